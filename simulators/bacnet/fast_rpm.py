"""The simulator's ReadPropertyMultiple answers without bacpypes3's object tree.

bacpypes3 answers an RPM by decoding the request into objects, reading each property through
its local objects' attribute machinery (``inspect.getattr_static`` per access), building a
result sequence per property and encoding it all again: several hundred microseconds a point,
more than the gateway spends, so a bench of the gateway measured the simulator. Here a request
whose service data ``drivers.bacnet.rpm_codec`` decodes is answered from the objects' stored
values, each result's encoding kept until its value changes.

Only what bacpypes3 would answer the same way is answered here: stored primitive values
(real, double, unsigned, signed, enumerated, boolean, bit string, null, UTF-8 character
string) and status-flags computed as bacpypes3's local objects compute them. Anything else —
an unknown object or property, an array index, ``all``/``required``/``optional``, a property
with its own getter, a constructed value — sends the whole request down bacpypes3's path.

:func:`install_fast_rpm` hooks the application service access point of one simulated device: an
unsegmented confirmed RPM request skips bacpypes3's decoding and reaches the application as a
generic ``ConfirmedRequestPDU``; :class:`RpmAnswers` builds the answer's service data.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from bacpypes3.apdu import APDU, ConfirmedRequestPDU
from bacpypes3.appservice import ServerSSM
from bacpypes3.basetypes import EventState, PropertyIdentifier, Reliability
from bacpypes3.local.object import Object as LocalObject
from bacpypes3.primitivedata import (
    BitString,
    Boolean,
    CharacterString,
    Double,
    Enumerated,
    Integer,
    Null,
    Real,
    Unsigned,
)

from core.errors import FramingError
from drivers.bacnet.rpm_codec import (
    BITS,
    BOOLEAN,
    CHARACTERS,
    DOUBLE,
    ENUMERATED,
    NULL,
    REAL,
    SERVICE_CHOICE,
    SIGNED,
    UNSIGNED,
    decode_request,
    encode_result_head,
    encode_value,
)

__all__ = ["RpmAnswers", "install_fast_rpm"]

_STATUS_FLAGS = 111
# all, optional, required: bacpypes3 expands them
_SPECIAL = frozenset({8, 80, 105})
# bacpypes3 class → application tag; Double before Real, its base class
_TAGS: tuple[tuple[type[Any], int], ...] = (
    (Null, NULL),
    (Boolean, BOOLEAN),
    (Double, DOUBLE),
    (Real, REAL),
    (Enumerated, ENUMERATED),
    (Unsigned, UNSIGNED),
    (Integer, SIGNED),
    (BitString, BITS),
    (CharacterString, CHARACTERS),
)
_STATUS_FLAGS_GETTER = LocalObject.__dict__["statusFlags"]
_NOT_FAST: Any = object()


def _tag_of(value: Any) -> int | None:
    for cls, tag in _TAGS:
        if isinstance(value, cls):
            if tag == CHARACTERS and getattr(value, "strEncoding", None):
                return None  # only UTF-8 is encoded here
            return tag
    return None


class RpmAnswers:
    """Answers of one device, from its objects (``(type number, instance) → local object``)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[int, int], Any] = {}
        # (type, instance, property) → (how to read it, attribute name)
        self._readers: dict[tuple[int, int, int], tuple[str, str]] = {}
        # (type, instance, property) → (value snapshot, encoded result)
        self._encoded: dict[tuple[int, int, int], tuple[Any, bytes]] = {}
        self.answered = 0
        self.passed_on = 0

    def add(self, obj: Any) -> None:
        objid = obj.objectIdentifier
        key = (int(objid[0]), int(objid[1]))
        self.objects[key] = obj
        self._readers = {k: v for k, v in self._readers.items() if k[:2] != key}

    def answer(self, data: bytes) -> bytes | None:
        """The ACK's service data for the request's ``data``, or None: bacpypes3 answers."""
        try:
            request = decode_request(data)
        except FramingError:
            return None
        out = bytearray()
        for object_type, instance, properties in request:
            obj = self.objects.get((object_type, instance))
            if obj is None:
                return self._passed_on()
            out += b"\x0c" + (object_type << 22 | instance).to_bytes(4, "big") + b"\x1e"
            for prop, index in properties:
                if index is not None or prop in _SPECIAL:
                    return self._passed_on()
                encoded = self._result(obj, (object_type, instance, prop))
                if encoded is None:
                    return self._passed_on()
                out += encoded
            out += b"\x1f"
        self.answered += 1
        return bytes(out)

    def _passed_on(self) -> bytes | None:
        self.passed_on += 1
        return None

    def _result(self, obj: Any, key: tuple[int, int, int]) -> bytes | None:
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = self._reader(obj, key[2])
        how, attr = reader
        tag: int | None
        if how == "status":
            stored = obj.__dict__
            event_state = stored.get("eventState")
            reliability = stored.get("reliability")
            value: Any = (
                int(event_state is not None and event_state != EventState.normal),
                int(reliability is not None and reliability != Reliability.noFaultDetected),
                0,
                int(stored.get("outOfService") == 1),
            )
            tag = BITS
        elif how == "stored":
            value = obj.__dict__.get(attr)
            tag = _tag_of(value) if value is not None else None
            if tag is None:
                return None
            if tag == BITS:
                value = tuple(value)
        else:
            return None
        cached = self._encoded.get(key)
        if cached is not None and type(cached[0]) is type(value) and cached[0] == value:
            return cached[1]
        encoded = encode_result_head(key[2], None) + b"\x4e" + encode_value(tag, value) + b"\x4f"
        self._encoded[key] = (value, encoded)
        return encoded

    @staticmethod
    def _reader(obj: Any, prop: int) -> tuple[str, str]:
        """How a property of ``obj`` is read: its stored value, status-flags as bacpypes3's
        local objects compute them, or not here (a getter of its own, not a property)."""
        try:
            attr = PropertyIdentifier(prop).attr
        except (ValueError, TypeError, KeyError, AttributeError):
            return ("no", "")
        if attr not in type(obj)._elements:
            return ("no", attr)
        descriptor = inspect.getattr_static(type(obj), attr, None)
        if prop == _STATUS_FLAGS and descriptor is _STATUS_FLAGS_GETTER:
            return ("status", attr)
        if descriptor is None or not hasattr(descriptor, "__get__"):
            return ("stored", attr)
        return ("no", attr)


class _RawServerSSM(ServerSSM):  # type: ignore[misc]
    """A server transaction that hands its (unsegmented RPM) request on undecoded."""

    async def request(self, apdu: APDU) -> None:
        apdu.pduSource = self.pdu_address
        apdu.pduDestination = None
        await self.ssmSAP.sap_request(apdu)


def install_fast_rpm(app: Any, enabled: Callable[[], bool]) -> None:
    """Let unsegmented RPM requests reach ``app`` undecoded while ``enabled()``; the
    application answers them with ``do_ConfirmedRequestPDU``."""
    asap = app.asap
    decoding_confirmation = asap.confirmation

    async def confirmation(pdu: Any) -> None:
        data = pdu.pduData
        # confirmed request (type 0), not segmented (bit 3 clear), service choice at octet 3
        if len(data) >= 4 and data[0] & 0xF8 == 0 and data[3] == SERVICE_CHOICE and enabled():
            apdu = APDU.decode(pdu)
            if isinstance(apdu, ConfirmedRequestPDU) and asap.dccEnableDisable == "enable":
                for tr in asap.serverTransactions:
                    if apdu.apduInvokeID == tr.invokeID and apdu.pduSource == tr.pdu_address:
                        break  # a retry of a request in progress: bacpypes3 handles duplicates
                else:
                    tr = _RawServerSSM(asap, apdu.pduSource)
                    asap.serverTransactions.append(tr)
                    await tr.indication(apdu)
                    return
        await decoding_confirmation(pdu)

    asap.confirmation = confirmation
