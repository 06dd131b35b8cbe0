"""The gateway's side of central's signed commands: judge, run, remember, report.

The uplink hands over every message that arrived on the gateway's command topic, still as bytes.
:class:`CommandExecutor` verifies it against central's pinned key(s) and this gateway's id
(``cloud_sync.downlink.verify_command``), refuses a replay or an expired command
(``cloud_sync.commands.ReplayWindow``), runs it through the same paths an operator on the LAN
dashboard uses — so an acknowledgement shows who did it and from where, and a point write goes
through the device's coordinator and its read-back — and reports the outcome as a
``command.result`` event on the event lane.

What was accepted is written to ``DATA_DIR/commands.json`` (atomically) *before* the command
runs: a command that crashed the gateway half-way is not run a second time after the restart.
The same file remembers a ``gateway.revoked`` notice (:attr:`CommandExecutor.revoked`), which the
LAN dashboard and ``/healthz`` show until the gateway is enrolled again.

Commands central encrypted to this gateway (docs/protocol.md §2.7) open with its X25519 key,
asked of the host for each command (``CommandHost.e2e_keys``) so that a renewed identity's key is
used as soon as the uplink switches; keys seen before stay usable for the rest of the run, for a
command encrypted just before a renewal.
Messages that fail authentication are counted and logged (``command.rejected``) but produce no
result event: an unauthenticated sender gets no oracle, and central never sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync.commands import RESULT_KIND, Command, CommandResult, ReplayWindow
from cloud_sync.downlink import verify_command
from cloud_sync.e2e import encryption_key_id
from cloud_sync.errors import EnvelopeError, KeyFileError
from cloud_sync.keys import load_x25519_private
from core.errors import GatehouseError
from core.model import Clock, Event
from edge.config_push import ConfigPush
from edge.rules_host.site import point_targets

__all__ = [
    "REVOKED_KIND",
    "STATE_FILE",
    "CommandExecutor",
    "CommandHost",
    "CommandInbox",
    "GatewayCommandHost",
]

_LOG = structlog.get_logger(__name__)
STATE_FILE = "commands.json"
REVOKED_KIND = "gateway.revoked"  # the event the gateway stores when central revokes it
# Linkage phases during which a rule owns the points it wrote (GB 50116 4.1.4: automation's
# writes stand until the fire is reset); a remote write to such a point is refused.
_TICK_S = 5.0  # how often a temporary log level is checked for expiry
_HOLDING = frozenset({"running", "done", "restoring", "awaiting_confirm"})


class CommandHost(Protocol):
    """What commands act on; the gateway provides it (``edge.app.Gateway``)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def alarms(self) -> Any:
        """The running alarm service (``edge.alarm_api.AlarmApi``), or None without rules."""

    def point_target(self, point_id: str) -> tuple[str, str] | None:
        """(device id, point key) of a point id of this site, or None."""

    async def write(self, device_id: str, key: str, value: Any, *, by: str | None = None) -> Any: ...

    async def emit(self, event: Event) -> None:
        """Store an event on the event lane (it reaches central like any other)."""

    def e2e_keys(self) -> Mapping[str, X25519PrivateKey]:
        """This gateway's current X25519 private key(s) by key id; empty when it has none."""


Resend = Callable[[str, int, int], Awaitable[int]]


class CommandExecutor:
    def __init__(
        self,
        host: CommandHost,
        *,
        gateway_id: str,
        central_keys: Mapping[str, Ed25519PublicKey],
        data_dir: Path,
        resend: Resend | None = None,
        config_push: ConfigPush | None = None,
    ) -> None:
        self._host = host
        self._config_push = config_push
        self._gateway_id = gateway_id
        self._keys = dict(central_keys)
        self._path = Path(data_dir) / STATE_FILE
        self._resend = resend
        # Central's revocation notice ({reason, at, cid, by}), kept across restarts; None if none.
        self.revoked: dict[str, Any] | None = None
        self._e2e_seen: dict[str, X25519PrivateKey] = {}
        self.window = self._load()
        self.rejected: Counter[str] = Counter()
        self.results: Counter[str] = Counter()
        self.recent: deque[CommandResult] = deque(maxlen=100)  # newest last, for health views
        self._log_restore_at: float | None = None
        self._log_restore_level: int | None = None

    def _load(self) -> ReplayWindow:
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
            revoked = raw.get("revoked") if isinstance(raw, dict) else None
            self.revoked = dict(revoked) if isinstance(revoked, dict) else None
            return ReplayWindow.from_dict(raw)
        except FileNotFoundError:
            return ReplayWindow()
        except (OSError, ValueError) as exc:
            # Refusing every command is safer than running old ones again: start above the past.
            _LOG.error("command record unreadable; refusing numbers it may have held", error=str(exc))
            return ReplayWindow(highest=2**63)

    def _save(self) -> None:
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            state = self.window.to_dict()
            if self.revoked is not None:
                state["revoked"] = self.revoked
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)

    async def handle(self, payload: bytes) -> CommandResult | None:
        """Judge and run one message from the command topic; None if it failed authentication."""
        try:
            signed = verify_command(
                payload, keys=self._keys, gateway_id=self._gateway_id, e2e_keys=self._e2e_keys()
            )
        except EnvelopeError as exc:
            self.rejected[exc.reason] += 1
            _LOG.warning("command.rejected", reason=exc.reason, error=str(exc)[:200])
            return None
        command = signed.command
        now = self._host.clock.wall()
        refusal = self.window.check(command, now)
        if refusal is not None:
            self.rejected[refusal] += 1
            result = _result(command, "refused", refusal)
        else:
            self.window.accept(command)
            self._save()
            result = await self._run(command)
        self.results[result.status] += 1
        self.recent.append(result)
        _LOG.info(
            "command",
            cid=command.cid,
            action=command.action,
            status=result.status,
            detail=result.detail,
            by=command.by,
            source=command.source,
        )
        await self._host.emit(Event(RESULT_KIND, self._gateway_id, now, result.as_event_data()))
        return result

    def _e2e_keys(self) -> dict[str, X25519PrivateKey]:
        source = getattr(self._host, "e2e_keys", None)  # hosts written before e2e may lack it
        if source is None:
            return self._e2e_seen
        try:
            self._e2e_seen.update(source())
        except KeyFileError as exc:
            # An unreadable key refuses encrypted commands (undecryptable), not plain ones.
            _LOG.error("command.e2e_key_unreadable", error=str(exc))
        return self._e2e_seen

    async def _run(self, command: Command) -> CommandResult:
        try:
            return await _ACTIONS[command.action](self, command)
        except (KeyError, ValueError, LookupError) as exc:
            return _result(command, "refused", str(exc)[:200])
        except (GatehouseError, TimeoutError, OSError) as exc:
            # A device that did not answer or a store that failed: that is the command's result.
            _LOG.warning("command failed", cid=command.cid, error=str(exc)[:200])
            return _result(command, "failed", f"{type(exc).__name__}: {exc}"[:200])

    def _who(self, command: Command) -> str:
        return f"{command.by}@central" + (f" ({command.source})" if command.source else "")

    async def _alarm_ack(self, command: Command) -> CommandResult:
        alarms = self._alarms(command)
        done = await alarms.acknowledge(
            command.args["key"], by=self._who(command), comment=command.args["comment"]
        )
        return _result(command, "done" if done else "refused", "" if done else "nothing to acknowledge")

    async def _alarm_shelve(self, command: Command) -> CommandResult:
        alarms = self._alarms(command)
        args = command.args
        done = await alarms.shelve(
            args["key"], by=self._who(command), until_wall=args["until"], reason=args["reason"]
        )
        return _result(command, "done" if done else "refused", "" if done else "alarm cannot be shelved now")

    def _alarms(self, command: Command) -> Any:
        alarms = self._host.alarms
        if alarms is None:
            raise LookupError("this site has no alarm rules")
        return alarms

    async def _point_write(self, command: Command) -> CommandResult:
        point = command.args["point"]
        target = self._host.point_target(point)
        if target is None:
            raise LookupError(f"no point {point!r} on this gateway")
        holder = self._linkage_holding(point, target)
        if holder is not None:
            return _result(command, "refused", f"point is held by fire linkage {holder!r}")
        readback = await self._host.write(target[0], target[1], command.args["value"], by=self._who(command))
        return _result(command, "done", value=readback)

    def _linkage_holding(self, point: str, target: tuple[str, str]) -> str | None:
        alarms = self._host.alarms
        if alarms is None:
            return None
        names = {point, f"{target[0]}.{target[1]}"}
        for rule in alarms.linkage_rules():
            if rule.get("state") in _HOLDING and any(w.get("point") in names for w in rule.get("writes", ())):
                return str(rule.get("id"))
        return None

    async def _outbox_resend(self, command: Command) -> CommandResult:
        if self._resend is None:
            raise LookupError("no uplink running to resend through")
        args = command.args
        count = await self._resend(args["lane"], args["first"], args["last"])
        detail = f"{count} batch(es) queued again" if count else "none of those batches is held any more"
        return _result(command, "done", detail, value=count)

    async def _log_level(self, command: Command) -> CommandResult:
        level = logging.getLevelName(command.args["level"].upper())
        root = logging.getLogger()
        if self._log_restore_level is None:
            self._log_restore_level = root.level
        root.setLevel(level)
        self._log_restore_at = self._host.clock.monotonic() + 60.0 * command.args["minutes"]
        return _result(
            command, "done", f"log level {command.args['level']} for {command.args['minutes']} min"
        )

    async def _push(self, command: Command) -> CommandResult:
        if self._config_push is None:
            raise LookupError("configuration push is not available on this gateway")
        args = command.args
        outcome = await self._config_push.apply(
            args["text"], args["version"], args["health_s"], by=self._who(command)
        )
        status = "done" if outcome.ok else ("refused" if outcome.refused else "failed")
        return _result(command, status, outcome.detail, value=args["version"])

    async def _gateway_revoked(self, command: Command) -> CommandResult:
        """Central has revoked this gateway and is about to cut its broker access: say so loudly
        on the LAN, where someone can act on it, and keep saying it across restarts."""
        now = self._host.clock.wall()
        self.revoked = {"reason": command.args["reason"], "at": now, "cid": command.cid, "by": command.by}
        self._save()
        _LOG.error("gateway.revoked", reason=command.args["reason"], by=command.by, cid=command.cid)
        await self._host.emit(Event(REVOKED_KIND, self._gateway_id, now, dict(self.revoked)))
        return _result(command, "done", "revocation noted")

    def tick(self) -> None:
        """Put the log level back once a temporary change has run out (called periodically)."""
        if self._log_restore_at is not None and self._host.clock.monotonic() >= self._log_restore_at:
            if self._log_restore_level is not None:
                logging.getLogger().setLevel(self._log_restore_level)
            self._log_restore_at = self._log_restore_level = None


def _result(command: Command, status: Any, detail: str = "", *, value: Any = None) -> CommandResult:
    return CommandResult(
        cid=command.cid,
        cseq=command.cseq,
        action=command.action,
        status=status,
        detail=detail,
        value=value,
        by=command.by,
        source=command.source,
    )


_ACTIONS: dict[str, Callable[[CommandExecutor, Command], Awaitable[CommandResult]]] = {
    "alarm.ack": CommandExecutor._alarm_ack,
    "alarm.shelve": CommandExecutor._alarm_shelve,
    "point.write": CommandExecutor._point_write,
    "outbox.resend": CommandExecutor._outbox_resend,
    "log.level": CommandExecutor._log_level,
    "config.push": CommandExecutor._push,
    "gateway.revoked": CommandExecutor._gateway_revoked,
}


class GatewayCommandHost:
    """:class:`CommandHost` over a running gateway (``edge.app.Gateway``)."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway
        self._targets: tuple[object, dict[str, tuple[str, str]]] | None = None

    @property
    def clock(self) -> Clock:
        clock: Clock = self._gateway.clock
        return clock

    @property
    def alarms(self) -> Any:
        return self._gateway.alarms

    def point_target(self, point_id: str) -> tuple[str, str] | None:
        site = self._gateway.site
        if self._targets is None or self._targets[0] is not site:  # rebuilt after a reload
            self._targets = (site, point_targets(site))
        return self._targets[1].get(point_id)

    async def write(self, device_id: str, key: str, value: Any, *, by: str | None = None) -> Any:
        return await self._gateway.write(device_id, key, value, by=by)

    async def emit(self, event: Event) -> None:
        await self._gateway.outbox.put_event(event)

    def e2e_keys(self) -> Mapping[str, X25519PrivateKey]:
        uplink = self._gateway.uplink
        path = None if uplink is None else uplink.config.e2e_key
        if path is None:
            return {}
        key = load_x25519_private(path)
        return {encryption_key_id(key.public_key()): key}


class CommandInbox:
    """A bounded queue between the uplink (which must never wait on a device) and the executor.

    ``submit`` is what the uplink calls for each message on the command topic; a burst beyond
    :data:`INBOX_SIZE` is dropped and counted (QoS 1 does not help here: the broker already
    delivered), which only a flood can cause — central sends commands one operator click at a time.
    """

    def __init__(self, size: int = 64) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def submit(self, payload: bytes) -> None:
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped += 1
            _LOG.warning("command.dropped", reason="inbox full", dropped=self.dropped)

    @contextlib.asynccontextmanager
    async def running(self, executor: CommandExecutor) -> AsyncIterator[CommandExecutor]:
        task = asyncio.create_task(self._serve(executor), name="commands")
        try:
            yield executor
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _serve(self, executor: CommandExecutor) -> None:
        while True:
            try:
                payload = await asyncio.wait_for(self._queue.get(), timeout=_TICK_S)
            except TimeoutError:
                executor.tick()
                continue
            await executor.handle(payload)
            executor.tick()
