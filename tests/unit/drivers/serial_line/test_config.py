"""Validation of the serial-line configuration models: what a mistake is reported as."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from drivers.serial_line.config import (
    LineFormat,
    LineFormatPatch,
    SerialLineBus,
    SerialLinePointConfig,
    effective_format,
    terminator_bytes,
)


def bus(**kw: Any) -> SerialLineBus:
    return SerialLineBus.model_validate({"id": "b", "type": "serial_line", "port": "/dev/ttyUSB0", **kw})


@pytest.mark.parametrize(
    ("text", "raw"), [("\r\n", b"\r\n"), ("\n", b"\n"), ("\r", b"\r"), ("\x03", b"\x03"), ("0x1e", b"\x1e")]
)
def test_terminators(text: str, raw: bytes) -> None:
    assert terminator_bytes(text) == raw
    assert bus(terminator=text).terminator_bytes == raw


@pytest.mark.parametrize("text", ["", "ab", "\r\r", "0x1", "€"])
def test_bad_terminators(text: str) -> None:
    with pytest.raises(ValidationError, match="terminator"):
        bus(terminator=text)


def test_gb18030_needs_a_terminator_that_never_occurs_inside_a_character() -> None:
    assert bus(encoding="gb18030", terminator="\x03").terminator_bytes == b"\x03"
    with pytest.raises(ValidationError, match="below 0x30"):
        bus(encoding="gb18030", terminator="@")
    with pytest.raises(ValidationError, match="ASCII byte"):
        bus(encoding="utf-8", terminator="0xff")


def test_line_format_rules() -> None:
    with pytest.raises(ValidationError, match="needs a 'command'"):
        LineFormat(mode="poll")
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        LineFormat(mode="unsolicited", pattern="(unclosed")
    with pytest.raises(ValidationError, match="not a named group"):
        LineFormat(mode="unsolicited", pattern="(?P<v>\\d+)", checksum={"kind": "xor8", "group": "cs"})
    with pytest.raises(ValidationError, match="placeholder"):
        LineFormat(command="#{unit}RD\r")
    with pytest.raises(ValidationError, match="unsolicited mode"):
        LineFormat(command="R\r", silence_timeout_s=5)
    line = LineFormat(command="#{address}RD\r", prefix="!{address}")
    assert line.command_for("07") == "#07RD\r" and line.address_prefix("07") == "!07"
    assert LineFormat(mode="unsolicited").address_prefix("A1") == "A1"
    assert LineFormat(mode="unsolicited").address_prefix(None) is None


def test_a_device_changes_only_what_it_names() -> None:
    profile = LineFormat(command="READ\r", pattern="X=(?P<x>\\d)", checksum={"kind": "sum8"})
    changed = effective_format(profile, LineFormatPatch.model_validate({"command": "READ\r\n"}))
    assert (
        changed.command == "READ\r\n" and changed.pattern == profile.pattern and changed.checksum is not None
    )
    assert effective_format(profile, LineFormatPatch.model_validate({"checksum": None})).checksum is None
    with pytest.raises(ValidationError, match="needs a 'command'"):
        effective_format(None, LineFormatPatch.model_validate({"mode": "poll"}))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"group": "a", "columns": [0, 2]}, "once"),
        ({"columns": [3, 3]}, "columns"),
        ({"type": "float", "true_values": ["1"]}, "for type 'bool'"),
        ({"type": "bool", "match": "x", "true_values": ["1"]}, "not both"),
        ({"type": "bool", "false_values": ["0"]}, "needs 'true_values'"),
        ({"access": "rw"}, "read-only"),
        ({"pattern": "(["}, "regular expression"),
    ],
)
def test_point_mistakes(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SerialLinePointConfig.model_validate({"id": "p", **kw})


def test_a_point_without_a_place_reads_the_group_of_its_name() -> None:
    assert SerialLinePointConfig(id="ph").group_name == "ph"
    assert SerialLinePointConfig(id="ph", group="p_h").group_name == "p_h"
    assert SerialLinePointConfig(id="ph", field=2).group_name is None
