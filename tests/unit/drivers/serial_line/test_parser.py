"""The serial-line parser: splitting, prefixes, checksums, locating values and converting them."""

from __future__ import annotations

import math
from typing import Any

import pytest

from core.model import Quality, Reason
from drivers.serial_line.config import ChecksumConfig, LineFormat, SerialLinePointConfig
from drivers.serial_line.parser import (
    LineParser,
    LineSplitter,
    LineStatus,
    checksum_text,
    compute_checksum,
)

WQ_PATTERN = r"T=(?P<turbidity>\S+?)NTU\s+CL=(?P<chlorine>\S+)\s+PH=(?P<ph>\S+)"


def point(**kw: Any) -> SerialLinePointConfig:
    return SerialLinePointConfig.model_validate(kw)


def fmt(**kw: Any) -> LineFormat:
    kw.setdefault("mode", "unsolicited")
    return LineFormat.model_validate(kw)


def values(result: Any) -> dict[str, Any]:
    return {r.key: r.value for r in result.readings}


def with_sum8(body: str) -> bytes:
    return f"{body}*{sum(body.encode()) & 0xFF:02X}".encode()


# -- splitter ---------------------------------------------------------------------------------


def test_splitter_cuts_at_crlf_across_reads() -> None:
    s = LineSplitter(b"\r\n", 64)
    assert s.feed(b"ab\r") == []
    assert s.feed(b"\ncd\r\nef") == [b"ab", b"cd"]
    assert s.pending == 2
    assert s.feed(b"\r\n") == [b"ef"]


def test_splitter_custom_byte() -> None:
    s = LineSplitter(b"\x03", 64)
    assert s.feed(b"\x02A1\x03\x02B2\x03") == [b"\x02A1", b"\x02B2"]


def test_overlong_line_is_dropped_and_the_next_line_is_whole() -> None:
    s = LineSplitter(b"\n", 16)
    assert s.feed(b"x" * 40) == []
    assert s.overlong == 1
    assert s.feed(b"y" * 40) == []  # still the same over-long line: counted once
    assert s.overlong == 1
    assert s.feed(b"zz\nGOOD\n") == [b"GOOD"]


def test_overlong_line_with_terminator_in_one_read() -> None:
    s = LineSplitter(b"\r\n", 8)
    assert s.feed(b"0123456789\r\nok\r\n") == [b"ok"]
    assert s.overlong == 1


def test_reset_forgets_a_fragment() -> None:
    s = LineSplitter(b"\r", 64)
    s.feed(b"stale fragm")
    s.reset()
    assert s.feed(b"fresh\r") == [b"fresh"]


# -- checksums --------------------------------------------------------------------------------


def test_checksum_kinds() -> None:
    data = b"T=0.42NTU CL=0.31 PH=7.12"
    assert compute_checksum(ChecksumConfig(kind="sum8").kind, data) == sum(data) & 0xFF
    x = 0
    for b in data:
        x ^= b
    assert compute_checksum(ChecksumConfig(kind="xor8").kind, data) == x
    # CRC-16/MODBUS check value of "123456789" is 0x4B37.
    assert compute_checksum(ChecksumConfig(kind="crc16_modbus").kind, b"123456789") == 0x4B37
    assert checksum_text(ChecksumConfig(kind="crc16_modbus"), b"123456789") == "4B37"
    assert checksum_text(ChecksumConfig(kind="crc16_modbus", byte_order="little"), b"123456789") == "374B"


def test_water_quality_line_with_sum8() -> None:
    parser = LineParser(
        fmt(pattern=WQ_PATTERN, checksum={"kind": "sum8"}),
        [point(id="turbidity"), point(id="chlorine"), point(id="ph")],
    )
    line = with_sum8("T=0.42NTU CL=0.31 PH=7.12")
    result = parser.parse(line)
    assert result.status is LineStatus.OK
    assert values(result) == {"turbidity": 0.42, "chlorine": 0.31, "ph": 7.12}
    # Lower-case hex is the same checksum.
    assert parser.parse(line[:-2] + line[-2:].lower()).status is LineStatus.OK


@pytest.mark.parametrize(
    "line",
    [b"T=0.42NTU CL=0.31 PH=7.13*5A", b"T=0.42NTU CL=0.31 PH=7.12", b"T=0.42NTU CL=0.31 PH=7.12*5", b"*ZZ"],
)
def test_bad_or_missing_checksum_rejects_the_line(line: bytes) -> None:
    parser = LineParser(fmt(pattern=WQ_PATTERN, checksum={"kind": "sum8"}), [point(id="ph")])
    result = parser.parse(line)
    assert result.status is LineStatus.BAD_CHECKSUM
    assert result.readings == ()
    assert parser.stats.bad_checksum == 1


def test_checksum_bursts_are_counted_once() -> None:
    parser = LineParser(fmt(pattern=WQ_PATTERN, checksum={"kind": "xor8"}), [point(id="ph")])
    good = b"T=1NTU CL=1 PH=2"
    x = 0
    for b in good:
        x ^= b
    bad = good + f"*{x ^ 0x55:02X}".encode()
    for _ in range(5):
        assert parser.parse(bad).status is LineStatus.BAD_CHECKSUM
    assert parser.parse(good + f"*{x:02X}".encode()).status is LineStatus.OK
    parser.parse(bad)
    assert parser.stats.bad_checksum == 6
    assert parser.stats.checksum_bursts == 2


def test_crc_in_a_group_with_skip() -> None:
    # ':' start mark not covered; four hex digits of CRC right after the body.
    body = "01+002.345"
    crc = checksum_text(ChecksumConfig(kind="crc16_modbus", group="cs"), body.encode())
    line = f":{body}{crc}".encode()
    parser = LineParser(
        fmt(
            pattern=r"^:(?P<addr>\d\d)(?P<level>[+-][\d.]+?)(?P<cs>[0-9A-F]{4})$",
            checksum={"kind": "crc16_modbus", "group": "cs", "skip": 1},
        ),
        [point(id="level")],
    )
    assert values(parser.parse(line)) == {"level": 2.345}
    assert parser.parse(line[:-1] + b"0" if line[-1:] != b"0" else line[:-1] + b"1").status is (
        LineStatus.BAD_CHECKSUM
    )


def test_checksum_over_gb18030_bytes() -> None:
    body = "火警 回路1"
    raw = body.encode("gb18030")
    line = raw + b"*" + f"{sum(raw) & 0xFF:02X}".encode()
    parser = LineParser(
        fmt(pattern=r"(?P<event>\S+) 回路(?P<loop>\d+)", checksum={"kind": "sum8"}),
        [point(id="loop", type="int"), point(id="event", type="string")],
        encoding="gb18030",
    )
    assert values(parser.parse(line)) == {"loop": 1, "event": "火警"}


# -- locating values --------------------------------------------------------------------------


def test_columns_and_fields() -> None:
    parser = LineParser(
        fmt(mode="poll", command="R\r"),
        [
            point(id="level", columns=[3, 11]),
            point(id="temp", columns=[11, 17], scale=1.0),
            point(id="status", field=-1, type="int"),
            point(id="second", field=1, type="string"),
        ],
    )
    result = parser.parse(b"!01+002.345+014.2 OK 3")
    assert result.status is LineStatus.OK
    assert values(result) == {"level": 2.345, "temp": 14.2, "status": 3, "second": "OK"}


def test_field_with_separator() -> None:
    parser = LineParser(fmt(separator=","), [point(id="b", field=1), point(id="z", field=5)])
    result = parser.parse(b"a,1.5,c")
    assert values(result) == {"b": 1.5}  # unsolicited: a field that is not there is not read


def test_point_with_its_own_pattern_value_group_or_first_group() -> None:
    parser = LineParser(
        fmt(),
        [
            point(id="a", pattern=r"A=(?P<value>[\d.]+)"),
            point(id="b", pattern=r"B=([\d.]+)"),
            point(id="c", pattern=r"\d+$", type="int"),
        ],
    )
    assert values(parser.parse(b"A=1.5 B=2.5 C=17")) == {"a": 1.5, "b": 2.5, "c": 17}


def test_strict_mode_marks_missing_points_bad() -> None:
    parser = LineParser(
        fmt(mode="poll", command="R\r", pattern=WQ_PATTERN),
        [point(id="ph"), point(id="x", pattern="X=(\\d)")],
    )
    result = parser.parse(b"T=1NTU CL=2 PH=7")
    assert values(result) == {"ph": 7.0, "x": None}
    assert result.readings[1].quality is Quality.BAD and result.readings[1].reason is Reason.DEVICE_ERROR
    nomatch = parser.parse(b"ERR 42")
    assert nomatch.status is LineStatus.NO_MATCH
    assert all(r.quality is Quality.BAD for r in nomatch.readings)
    assert len(nomatch.readings) == 2


def test_unsolicited_line_that_does_not_match_gives_only_own_pattern_points() -> None:
    parser = LineParser(
        fmt(pattern=r"^(?P<event>\S+) (?P<loop>\d+)$"),
        [
            point(id="event", type="string"),
            point(
                id="fire", type="bool", pattern="(FIRE|RESET)", true_values=["FIRE"], false_values=["RESET"]
            ),
        ],
    )
    assert values(parser.parse(b"FIRE 3")) == {"event": "FIRE", "fire": True}
    assert values(parser.parse(b"--- RESET ---")) == {"fire": False}
    assert values(parser.parse(b"page two")) == {}


def test_prefix_filters_other_devices() -> None:
    line = LineFormat(mode="unsolicited", prefix=">{address}", pattern=r"L=(?P<level>[\d.]+)")
    parser = LineParser(line, [point(id="level")], address="02")
    assert parser.parse(b">01 L=1.0").status is LineStatus.OTHER_DEVICE
    assert values(parser.parse(b">02 L=2.0")) == {"level": 2.0}
    assert parser.belongs(b">02 L=2.0") and not parser.belongs(b">01 L=2.0")
    # The address alone is the prefix when no prefix is configured.
    plain = LineParser(LineFormat(mode="unsolicited"), [point(id="v", field=1)], address="A7")
    assert plain.parse(b"B1 5").status is LineStatus.OTHER_DEVICE
    assert values(plain.parse(b"A7 5")) == {"v": 5.0}


def test_empty_lines_and_edge_junk() -> None:
    parser = LineParser(fmt(), [point(id="v", field=0)])
    assert parser.parse(b"").status is LineStatus.EMPTY
    assert parser.parse(b"  \r").status is LineStatus.EMPTY
    assert values(parser.parse(b"\x00\x003.5\r")) == {"v": 3.5}


# -- conversion -------------------------------------------------------------------------------


def conv(text: str, **kw: Any) -> Any:
    parser = LineParser(
        fmt(mode="poll", command="R"), [point(id="p", pattern="(.*)", **kw)], encoding="utf-8"
    )
    (reading,) = parser.parse(text.encode("utf-8")).readings
    return reading


@pytest.mark.parametrize(
    ("text", "kw", "value"),
    [
        ("+002.345", {}, 2.345),
        ("-.5", {}, -0.5),
        ("1e3", {}, 1000.0),
        ("0023", {"type": "int"}, 23),
        ("-7", {"type": "int"}, -7),
        ("125", {"scale": 0.1, "offset": -2}, 10.5),
        ("12", {"type": "int", "scale": 0.5}, 6.0),
        (" text  ", {"type": "string"}, "text"),
    ],
)
def test_numbers_and_strings(text: str, kw: dict[str, Any], value: Any) -> None:
    reading = conv(text, **kw)
    assert reading.quality is Quality.GOOD
    assert reading.value == value and type(reading.value) is type(value)


@pytest.mark.parametrize(
    ("text", "kw"),
    [
        ("nan", {}),
        ("inf", {}),
        ("1_000", {}),
        ("----", {}),
        ("OVER", {}),
        ("1.5", {"type": "int"}),
        ("9" * 80, {}),
    ],
)
def test_values_that_do_not_parse_are_bad_device_error(text: str, kw: dict[str, Any]) -> None:
    reading = conv(text, **kw)
    assert (reading.quality, reading.reason, reading.value) == (Quality.BAD, Reason.DEVICE_ERROR, None)


def test_out_of_range_keeps_the_value() -> None:
    reading = conv("15.2", valid_min=0, valid_max=14)
    assert (reading.quality, reading.reason, reading.value) == (Quality.BAD, Reason.OUT_OF_RANGE, 15.2)
    huge = conv("9e300", scale=1e10)
    assert huge.reason is Reason.OUT_OF_RANGE and math.isnan(huge.value)


@pytest.mark.parametrize(
    ("text", "kw", "value"),
    [
        ("1", {}, True),
        ("OFF", {}, False),
        ("2.0", {}, True),
        ("ALARM", {"true_values": ["ALARM"]}, True),
        ("NORMAL", {"true_values": ["ALARM"]}, False),
        ("火警", {"true_values": ["火警"], "false_values": ["复位"]}, True),
        ("复位", {"true_values": ["火警"], "false_values": ["复位"]}, False),
        ("LEVEL HIGH ALARM", {"match": "HIGH"}, True),
        ("LEVEL OK", {"match": "HIGH"}, False),
    ],
)
def test_booleans(text: str, kw: dict[str, Any], value: bool) -> None:
    reading = conv(text, type="bool", **kw)
    assert reading.quality is Quality.GOOD and reading.value is value


def test_boolean_neither_true_nor_false_is_bad() -> None:
    assert conv("故障", type="bool", true_values=["火警"], false_values=["复位"]).quality is Quality.BAD
    assert conv("maybe", type="bool").quality is Quality.BAD


def test_enums_by_label_chinese_label_or_code() -> None:
    kw = {"type": "enum", "enum": {1: "fire", 2: "fault"}, "enum_zh": {1: "火警", 2: "故障"}}
    assert conv("火警", **kw).value == 1
    assert conv("fault", **kw).value == 2
    assert conv("7", **kw).value == 7
    bad = conv("监管", **kw)
    assert (bad.quality, bad.reason) == (Quality.BAD, Reason.DEVICE_ERROR)
