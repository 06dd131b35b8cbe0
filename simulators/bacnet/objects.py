"""The simulator's BACnet objects: bacpypes3 local objects that behave like a real controller's.

bacpypes3 0.0.110 lets a client write any property of a local object and its multi-state-value
object crashes when a COV subscription arrives (its COV criteria looks for a cov-increment the
object does not have). These subclasses say which properties a client may write (present-value
of outputs and values, or of an input that is out of service; out-of-service; cov-increment
where the device allows it) and give binary and multi-state objects the generic COV criteria.
Value objects are commandable (priority array and relinquish-default), as in most controllers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bacpypes3.basetypes import EngineeringUnits, EventState, Reliability, StatusFlags
from bacpypes3.errors import PropertyError
from bacpypes3.local.cmd import Commandable
from bacpypes3.local.cov import COVIncrementCriteria, GenericCriteria
from bacpypes3.local.object import Object as LocalObject
from bacpypes3.object import (
    AnalogInputObject,
    AnalogOutputObject,
    AnalogValueObject,
    BinaryInputObject,
    BinaryOutputObject,
    BinaryValueObject,
    MultiStateValueObject,
)
from bacpypes3.primitivedata import CharacterString

__all__ = ["ObjectSpec", "SIM_CLASSES", "make_object"]

_ANY_TIME = frozenset({"outOfService"})


class _Guarded:
    """Refuses writes to properties a real device keeps read-only (write-access-denied)."""

    _writable_always: frozenset[str] = frozenset()
    _cov_increment_writable: bool = True

    async def write_property(  # type: ignore[no-untyped-def]
        self, attr, value, index=None, priority=None
    ) -> None:
        name = attr if isinstance(attr, str) else self._property_identifier_class(attr).attr  # type: ignore[attr-defined]
        allowed = name in self._writable_always or name in _ANY_TIME
        if name == "presentValue" and getattr(self, "outOfService", False):
            allowed = True  # an input out of service may be written by hand (clause 12.x.4)
        if name == "covIncrement":
            allowed = self._cov_increment_writable
        if not allowed:
            raise PropertyError("writeAccessDenied")
        await super().write_property(attr, value, index, priority)  # type: ignore[misc]


class SimAI(_Guarded, LocalObject, AnalogInputObject):  # type: ignore[misc]
    _cov_criteria = COVIncrementCriteria


class SimAO(_Guarded, Commandable, LocalObject, AnalogOutputObject):  # type: ignore[misc]
    _cov_criteria = COVIncrementCriteria
    _writable_always = frozenset({"presentValue"})


class SimAV(_Guarded, Commandable, LocalObject, AnalogValueObject):  # type: ignore[misc]
    _cov_criteria = COVIncrementCriteria
    _writable_always = frozenset({"presentValue"})


class SimBI(_Guarded, LocalObject, BinaryInputObject):  # type: ignore[misc]
    _cov_criteria = GenericCriteria


class SimBO(_Guarded, Commandable, LocalObject, BinaryOutputObject):  # type: ignore[misc]
    _cov_criteria = GenericCriteria
    _writable_always = frozenset({"presentValue"})


class SimBV(_Guarded, Commandable, LocalObject, BinaryValueObject):  # type: ignore[misc]
    _cov_criteria = GenericCriteria
    _writable_always = frozenset({"presentValue"})


class SimMSV(_Guarded, Commandable, LocalObject, MultiStateValueObject):  # type: ignore[misc]
    _cov_criteria = GenericCriteria
    _writable_always = frozenset({"presentValue"})


SIM_CLASSES: dict[str, type[Any]] = {
    "analog-input": SimAI,
    "analog-output": SimAO,
    "analog-value": SimAV,
    "binary-input": SimBI,
    "binary-output": SimBO,
    "binary-value": SimBV,
    "multi-state-value": SimMSV,
}
_ANALOG = ("analog-input", "analog-output", "analog-value")
_BINARY = ("binary-input", "binary-output", "binary-value")
_COMMANDABLE = ("analog-output", "analog-value", "binary-output", "binary-value", "multi-state-value")


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """One object of a simulated device. ``value`` is the initial present-value (float, bool or
    state number); ``relinquish_default`` applies to commandable objects."""

    type: str
    instance: int
    name: str
    value: float | bool | int = 0
    units: str | None = None
    description: str = ""
    relinquish_default: float | bool | int | None = None
    cov_increment: float = 0.0
    states: tuple[str, ...] = ()
    refuses_cov: bool = False

    @property
    def key(self) -> str:
        return f"{self.type},{self.instance}"


def make_object(spec: ObjectSpec, *, cov_increment_writable: bool = True) -> Any:
    """A bacpypes3 local object for ``spec``."""
    cls = SIM_CLASSES[spec.type]
    if spec.refuses_cov or not cov_increment_writable:
        attrs: dict[str, Any] = {}
        if spec.refuses_cov:
            attrs["_cov_criteria"] = None
        if not cov_increment_writable:
            attrs["_cov_increment_writable"] = False
        cls = type(cls.__name__, (cls,), attrs)
    kwargs: dict[str, Any] = {
        "objectIdentifier": (spec.type, spec.instance),
        "objectName": spec.name,
        "description": CharacterString(spec.description or spec.name),
        "statusFlags": StatusFlags([0, 0, 0, 0]),
        "eventState": EventState.normal,
        "outOfService": False,
        "reliability": Reliability.noFaultDetected,
    }
    if spec.type in _ANALOG:
        kwargs["presentValue"] = float(spec.value)
        kwargs["units"] = EngineeringUnits(spec.units or "noUnits")
        kwargs["covIncrement"] = float(spec.cov_increment)
    elif spec.type in _BINARY:
        kwargs["presentValue"] = "active" if spec.value else "inactive"
        if spec.type == "binary-output":
            kwargs["polarity"] = "normal"
    else:
        states = spec.states or ("off", "on")
        kwargs["presentValue"] = int(spec.value) or 1
        kwargs["numberOfStates"] = len(states)
        kwargs["stateText"] = [CharacterString(s) for s in states]
    if spec.type in _COMMANDABLE:
        # an empty priority array: present-value starts at relinquish-default
        default = spec.relinquish_default if spec.relinquish_default is not None else spec.value
        if spec.type in _ANALOG:
            kwargs["relinquishDefault"] = float(default)
        elif spec.type in _BINARY:
            kwargs["relinquishDefault"] = "active" if default else "inactive"
        else:
            kwargs["relinquishDefault"] = int(default) or 1
        kwargs["presentValue"] = kwargs["relinquishDefault"]
    return cls(**kwargs)
