"""Pydantic models of alarm definitions and linkage rules, in the shape they have in YAML.

A profile point carries default alarms in its ``alarms:`` list; a site adds or overrides them
under ``rules.alarms`` (matched by ``point`` + ``id``) and adds ``rules.linkage`` and
``rules.flood``. Shapes are documented for installers in ``docs/rules.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.model import Value

__all__ = [
    "CHINESE_CLASSES",
    "PRIORITY_RANK",
    "AlarmDef",
    "AlarmKind",
    "AlarmOverride",
    "EnumCode",
    "FloodConfig",
    "LinkageRule",
    "LinkageStep",
    "Message",
    "PriorityName",
    "RulesConfig",
    "WaitFor",
    "priority_of",
]

AlarmKind = Literal["high", "high_high", "low", "low_low", "state", "enum", "stale", "rate", "condition"]
PriorityName = Literal["fire", "fault", "supervisory", "critical", "high", "medium", "low"]

# ISA-18.2 priorities, 1 = most urgent. The Chinese fire classes map onto them: 火警 (fire) is
# the most urgent thing a control room sees; 监管 (supervisory: a valve closed, a pump in manual)
# threatens the fire system's readiness and outranks 故障 (fault), as in GB 4717's display order.
PRIORITY_RANK: dict[str, int] = {"critical": 1, "high": 2, "medium": 3, "low": 4}
CHINESE_CLASSES: dict[str, str] = {"fire": "critical", "supervisory": "high", "fault": "medium"}

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]


def priority_of(name: str) -> tuple[str, str | None]:
    """``fire`` → (``critical``, ``fire``); ``high`` → (``high``, ``None``)."""
    if name in CHINESE_CLASSES:
        return CHINESE_CLASSES[name], name
    return name, None


class _Model(BaseModel):
    # Built on first use, as one schema for the whole rules section: built eagerly, every
    # nested model also got a validator of its own (issue 19: 0.3-1.4 MB of the gateway's RSS).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Message(_Model):
    zh: str = ""
    en: str = ""


class EnumCode(_Model):
    priority: PriorityName | None = None  # default: the alarm's own priority
    message: Message = Message()


_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "high": ("setpoint",),
    "high_high": ("setpoint",),
    "low": ("setpoint",),
    "low_low": ("setpoint",),
    "state": (),
    "enum": ("codes",),
    "stale": ("after_s",),
    "rate": ("per_s", "limit"),
    "condition": ("expr",),
}


class AlarmDef(_Model):
    """One alarm on one point (or, for ``kind: condition`` at site level, across points)."""

    id: Identifier
    kind: AlarmKind
    priority: PriorityName = "medium"
    latched: bool = False
    ack_required: bool = True
    on_delay_s: float = Field(default=0.0, ge=0)
    off_delay_s: float = Field(default=0.0, ge=0)
    deadband: float = Field(default=0.0, ge=0)
    realarm_s: float | None = Field(default=None, gt=0, description="re-annunciate a standing acked alarm")
    message: Message = Message()
    enabled: bool = True
    zone: str | None = Field(default=None, description="default: the point's zone")
    suppressed_by: list[str] = Field(
        default_factory=list, description="alarm references; while one is active this one is held back"
    )
    # kind-specific
    setpoint: float | None = None
    when: bool = True  # state: the value that means alarm
    bit: int | None = Field(default=None, ge=0, le=63, description="state: test this bit of an integer")
    codes: dict[int, EnumCode] | None = None
    after_s: float | None = Field(default=None, gt=0)
    per_s: float | None = Field(default=None, gt=0)
    limit: float | None = Field(default=None, gt=0)
    expr: str | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> AlarmDef:
        for name in _KIND_FIELDS[self.kind]:
            if getattr(self, name) is None:
                raise ValueError(f"an alarm of kind '{self.kind}' needs '{name}'")
        return self


class AlarmOverride(_Model):
    """A site's change to a profile alarm, or a new alarm (then ``kind`` is required).

    ``point`` is ``device.point`` or a full id ``site/device/point``; it may be left out for a
    ``kind: condition`` alarm that belongs to no single point.
    """

    point: str | None = None
    id: Identifier
    kind: AlarmKind | None = None
    priority: PriorityName | None = None
    latched: bool | None = None
    ack_required: bool | None = None
    on_delay_s: float | None = Field(default=None, ge=0)
    off_delay_s: float | None = Field(default=None, ge=0)
    deadband: float | None = Field(default=None, ge=0)
    realarm_s: float | None = Field(default=None, gt=0)
    message: Message | None = None
    enabled: bool | None = None
    zone: str | None = None
    suppressed_by: list[str] | None = None
    setpoint: float | None = None
    when: bool | None = None
    bit: int | None = Field(default=None, ge=0, le=63)
    codes: dict[int, EnumCode] | None = None
    after_s: float | None = Field(default=None, gt=0)
    per_s: float | None = Field(default=None, gt=0)
    limit: float | None = Field(default=None, gt=0)
    expr: str | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"point"})


class WaitFor(_Model):
    point: str
    equals: Value = True
    timeout_s: float = Field(default=30.0, gt=0)


class LinkageStep(_Model):
    """Either a write (``write`` + ``value``) or a wait for feedback (``wait_for``)."""

    write: str | None = Field(default=None, description="point reference: device.point or site/dev/pt")
    value: Value = None
    wait_for: WaitFor | None = None
    verify: bool = True
    delay_s: float = Field(default=0.0, ge=0, description="pause after the previous step finished")
    retries: int = Field(default=2, ge=0, le=10)
    timeout_s: float = Field(default=10.0, gt=0, description="per attempt, for the write and its read-back")
    interlock: str | None = Field(default=None, description="while this condition holds the step waits")
    on_interlock: Literal["wait", "skip"] = "wait"
    on_failure: Literal["continue", "abort"] = "continue"
    name: str | None = None
    priority: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="write priority for points with a priority array (BACnet); default: the point's own",
    )

    @model_validator(mode="after")
    def _one_action(self) -> LinkageStep:
        if (self.write is None) == (self.wait_for is None):
            raise ValueError("a step has exactly one of 'write' or 'wait_for'")
        if self.write is not None and self.value is None:
            raise ValueError("a 'write' step needs a 'value'")
        if self.priority is not None and self.write is None:
            raise ValueError("'priority' is for a 'write' step")
        return self


class LinkageRule(_Model):
    id: Identifier
    name: Message = Message()
    trigger: str = Field(description="condition; GB 50116 4.1.6 wants the AND of two independent signals")
    reset: str | None = Field(
        default=None, description="when to run the restore steps; default: every alarm in the trigger normal"
    )
    mode: Literal["automatic", "confirm"] = "automatic"
    interlock: str | None = Field(default=None, description="while this holds, no step of the rule runs")
    steps: list[LinkageStep] = Field(min_length=1)
    restore: list[LinkageStep] = Field(default_factory=list)
    enabled: bool = True


class FloodConfig(_Model):
    window_s: float = Field(default=600.0, gt=0)
    start_above: int = Field(default=10, ge=1, description="more than this many raises in the window")
    end_below: int = Field(default=5, ge=1)
    chatter_window_s: float = Field(default=300.0, gt=0)
    chatter_above: int = Field(default=5, ge=1, description="more than this many transitions per alarm")
    chatter_end_at_or_below: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _order(self) -> FloodConfig:
        if self.end_below > self.start_above:
            raise ValueError("end_below must not be above start_above")
        return self


class RulesConfig(_Model):
    """The ``rules:`` section of a site file."""

    alarms: list[AlarmOverride] = Field(default_factory=list)
    linkage: list[LinkageRule] = Field(default_factory=list)
    flood: FloodConfig = FloodConfig()
