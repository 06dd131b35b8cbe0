"""The linkage (联动) sequencer: a pure state machine per rule that emits write commands.

A rule waits for its trigger (GB 50116 4.1.6: the AND of two independent alarm signals), asks
for an operator's confirmation if its mode says so, then runs its steps in order: each step
waits its ``delay_s``, checks interlocks and manual overrides, emits a ``Command`` and waits for
the ``CommandResult`` (written, verified, failed) or its timeout, retrying as configured; a
``wait_for`` step waits for a feedback point instead (the smoke fan starts on the vent's
feedback). When the reset condition holds the restore steps run. Every step leaves audit
events: ``linkage.requested``, ``.written``, ``.verified``, ``.failed``, ``.skipped``.

The sequencer never does I/O and never reads a clock: the engine passes ``now`` in.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from core.model import Event, Value
from rules.compiled import LinkageSpec, StepSpec
from rules.expr import Env

__all__ = ["Command", "CommandResult", "LinkageIO", "LinkageRunner", "Phase", "RunState"]

SYSTEM = "system"


class Phase(enum.StrEnum):
    IDLE = "idle"
    AWAIT_CONFIRM = "await_confirm"
    RUNNING = "running"
    ACTIVE = "active"  # every step done; holding until reset
    RESTORING = "restoring"


@dataclass(frozen=True, slots=True)
class Command:
    """A request to write a point, for the device's coordinator (write, then read back)."""

    correlation_id: str
    rule_id: str
    step: int
    point_id: str
    value: Value
    verify: bool
    timeout_s: float
    priority: int | None = None  # a priority-array write (BACnet); None: the point's own


@dataclass(frozen=True, slots=True)
class CommandResult:
    correlation_id: str
    status: Literal["written", "verified", "failed"]
    detail: str = ""


@dataclass(slots=True)
class LinkageIO:
    """What the runners share with the engine: state to read, and lists to append output to."""

    env: Env
    overridden: dict[str, str] = field(default_factory=dict)  # point id → operator
    events: list[Event] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)


@dataclass(slots=True)
class RunState:
    phase: str = Phase.IDLE.value
    run: int = 0  # activations so far; part of every correlation id
    restoring: bool = False
    step: int = 0
    stage: str = "delay"  # delay, ready, sent, waiting, blocked
    due: float | None = None
    attempt: int = 0
    corr: str | None = None
    written: bool = False
    trigger: bool = False
    # held off: the trigger holds but must not (re)start the rule until it clears and comes back
    # (a manual restore during the fire, or a drill that does not run linkage)
    hold: bool = False

    def to_dict(self) -> dict[str, Any]:
        # every field is a scalar: a flat copy, several times faster than dataclasses.asdict
        # (the daemon snapshots the whole engine after each batch of transitions)
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class LinkageRunner:
    def __init__(self, spec: LinkageSpec, io: LinkageIO) -> None:
        self.spec = spec
        self.io = io
        self.state = RunState()

    # -- inputs ----------------------------------------------------------------------------
    def on_trigger(self, value: bool, now: float) -> None:
        self.state.trigger = value
        if not value:
            self.state.hold = False
        elif self.state.phase == Phase.IDLE and not self.state.hold:
            self._activate(now)

    def hold_off(self, now: float, reason: str) -> None:
        """The trigger holds, but the rule does not start (drill mode without linkage)."""
        st = self.state
        st.trigger = True
        if not st.hold:
            st.hold = True
            self._emit("held", now, reason=reason)

    def manual_start(self, by: str, now: float) -> bool:
        """An operator starts the rule by hand (no trigger, no confirmation needed)."""
        st = self.state
        if st.phase not in (Phase.IDLE, Phase.AWAIT_CONFIRM):
            return False
        if st.phase == Phase.IDLE:
            st.run += 1
        st.hold = False
        self._emit("manual_start", now, by=by)
        self._start(False, now)
        return True

    def manual_restore(self, by: str, now: float) -> bool:
        """An operator restores by hand; with the trigger still there it is held off, not re-run."""
        st = self.state
        if st.phase not in (Phase.RUNNING, Phase.ACTIVE):
            return False
        st.hold = st.trigger
        self._emit("manual_restore", now, by=by)
        self._begin_restore(now)
        return True

    def on_reset(self, value: bool, now: float) -> None:
        st = self.state
        if not value:
            return
        if st.phase == Phase.AWAIT_CONFIRM:
            st.phase = Phase.IDLE.value
            self._emit("cancelled", now, by=SYSTEM, reason="reset before confirmation")
        elif st.phase in (Phase.RUNNING, Phase.ACTIVE):
            self._begin_restore(now)

    def confirm(self, by: str, now: float) -> bool:
        if self.state.phase != Phase.AWAIT_CONFIRM:
            return False
        self._emit("confirmed", now, by=by)
        self._start(False, now)
        return True

    def cancel(self, by: str, now: float) -> bool:
        if self.state.phase != Phase.AWAIT_CONFIRM:
            return False
        self.state.phase = Phase.IDLE.value
        self._emit("cancelled", now, by=by)
        return True

    def on_result(self, result: CommandResult, now: float) -> bool:
        st = self.state
        if st.stage != "sent" or result.correlation_id != st.corr:
            return False  # a late answer to an attempt already given up on
        step = self._step()
        assert step is not None
        if result.status == "written":
            st.written = True
            self._audit("written", step, now)
            if not step.verify:
                self._next(now)
        elif result.status == "verified":
            if not st.written:
                self._audit("written", step, now)
            self._audit("verified", step, now)
            self._next(now)
        else:
            self._attempt_failed(step, now, result.detail or "write failed")
        self.advance(now)
        return True

    # -- the sequencer ---------------------------------------------------------------------
    @property
    def next_due(self) -> float | None:
        st = self.state
        return st.due if st.phase in (Phase.RUNNING, Phase.RESTORING) else None

    @property
    def waiting_point(self) -> str | None:
        step = self._step()
        if step is None or self.state.stage != "waiting":
            return None
        return step.wait_point

    def advance(self, now: float) -> None:
        """Go as far as possible at ``now``; called on ticks, results and relevant changes."""
        st = self.state
        for _ in range(4 * (len(self.spec.steps) + len(self.spec.restore)) + 8):
            if st.phase not in (Phase.RUNNING, Phase.RESTORING):
                return
            step = self._step()
            if step is None:
                self._finish(now)
                continue
            if not self._advance_step(step, now):
                return

    def _advance_step(self, step: StepSpec, now: float) -> bool:
        """One stage of the current step; False when it must wait for time or an input."""
        st = self.state
        if st.stage == "delay":
            if st.due is not None and now < st.due:
                return False
            st.stage = "ready"
        if st.stage in ("ready", "blocked"):
            return self._begin_step(step, now)
        if st.stage == "sent":
            if st.due is not None and now >= st.due:
                self._attempt_failed(step, now, "no result before timeout_s")
                return True
            return False
        assert st.stage == "waiting"
        if step.wait_point is not None and self.io.env.values.get(step.wait_point) == step.wait_equals:
            self._audit("verified", step, now, feedback=step.wait_point)
            self._next(now)
            return True
        if st.due is not None and now >= st.due:
            self._audit("failed", step, now, reason="feedback did not arrive before timeout_s", final=True)
            return self._after_failure(step, now)
        return False

    def _begin_step(self, step: StepSpec, now: float) -> bool:
        st = self.state
        interlocks = [x for x in (self.spec.interlock, step.interlock) if x is not None]
        if any(x.evaluate(self.io.env) is True for x in interlocks):
            if step.on_interlock == "skip":
                self._audit("skipped", step, now, reason="interlock")
                self._next(now)
                return True
            if st.stage != "blocked":
                st.stage = "blocked"
                self._audit("blocked", step, now, reason="interlock")
            return False
        if step.write is not None:
            by = self.io.overridden.get(step.write)
            if by is not None:
                # GB 50116 4.1.4: the manual path always wins; automation never undoes it
                self._audit("skipped", step, now, reason="manual override", overridden_by=by)
                self._next(now)
                return True
            st.attempt = 0
            self._send(step, now)
            return True
        st.stage = "waiting"
        st.due = now + step.timeout_s
        self._audit("requested", step, now, feedback=step.wait_point, equals=step.wait_equals)
        return True

    def _send(self, step: StepSpec, now: float) -> None:
        st = self.state
        st.attempt += 1
        st.written = False
        seq = "restore" if st.restoring else "steps"
        st.corr = f"{self.spec.id}:{st.run}:{seq}:{step.index}:{st.attempt}"
        st.stage = "sent"
        st.due = now + step.timeout_s
        assert step.write is not None
        self.io.commands.append(
            Command(
                st.corr,
                self.spec.id,
                step.index,
                step.write,
                step.value,
                step.verify,
                step.timeout_s,
                step.priority,
            )
        )
        self._audit("requested", step, now)

    def _attempt_failed(self, step: StepSpec, now: float, reason: str) -> None:
        st = self.state
        final = st.attempt > step.retries
        self._audit("failed", step, now, reason=reason, final=final)
        if final:
            self._after_failure(step, now)
            return
        by = self.io.overridden.get(step.write or "")
        if by is not None:  # taken over by hand since the last attempt: never retry over it
            self._audit("skipped", step, now, reason="manual override", overridden_by=by)
            self._next(now)
            return
        self._send(step, now)

    def _after_failure(self, step: StepSpec, now: float) -> bool:
        if step.on_failure == "abort":
            self._emit("aborted", now, step=step.index, reason="step failed")
            self._finish(now, aborted=True)
            return True
        self._next(now)
        return True

    def _next(self, now: float) -> None:
        st = self.state
        st.step += 1
        st.stage = "delay"
        st.attempt = 0
        st.corr = None
        nxt = self._step()
        st.due = now + nxt.delay_s if nxt is not None else None

    def _step(self) -> StepSpec | None:
        st = self.state
        seq = self.spec.restore if st.restoring else self.spec.steps
        return seq[st.step] if st.step < len(seq) else None

    def _activate(self, now: float) -> None:
        st = self.state
        st.run += 1
        if self.spec.mode == "confirm":
            st.phase = Phase.AWAIT_CONFIRM.value
            self._emit("confirm_requested", now)
            return
        self._start(False, now)

    def _start(self, restoring: bool, now: float) -> None:
        st = self.state
        st.phase = (Phase.RESTORING if restoring else Phase.RUNNING).value
        st.restoring = restoring
        st.step = -1
        self._next(now)
        self._emit("restoring" if restoring else "started", now)
        self.advance(now)

    def _begin_restore(self, now: float) -> None:
        self._start(True, now)

    def _finish(self, now: float, aborted: bool = False) -> None:
        st = self.state
        st.stage, st.due, st.corr = "delay", None, None
        if st.restoring:
            st.phase = Phase.IDLE.value
            st.restoring = False
            self._emit("restored", now)
            if st.trigger and not st.hold:  # the fire came back while restoring: run again
                self._activate(now)
            return
        st.phase = Phase.ACTIVE.value
        if not aborted:
            self._emit("completed", now)

    # -- audit -----------------------------------------------------------------------------
    def _emit(self, what: str, now: float, **data: Any) -> None:
        payload: dict[str, Any] = {
            "rule": self.spec.id,
            "name": {"zh": self.spec.name_zh, "en": self.spec.name_en},
            "mode": self.spec.mode,
            "run": self.state.run,
            "by": SYSTEM,
            "at": now,
        }
        payload.update(data)
        self.io.events.append(Event(f"linkage.{what}", self.spec.id, now, payload))

    def _audit(self, what: str, step: StepSpec, now: float, **data: Any) -> None:
        st = self.state
        self._emit(
            what,
            now,
            sequence="restore" if st.restoring else "steps",
            step=step.index,
            step_name=step.name,
            point=step.write or step.wait_point,
            value=step.value if step.write else step.wait_equals,
            attempt=st.attempt,
            correlation_id=st.corr,
            **data,
        )

    def snapshot(self) -> dict[str, Any]:
        return self.state.to_dict()

    def restore_state(self, data: dict[str, Any]) -> None:
        self.state = RunState.from_dict(data)
