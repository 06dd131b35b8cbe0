"""At least 100,000 random and mutated lines through the splitter and the parser: nothing raises,
every reading keeps the quality rules, and a good line after garbage is always parsed."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from core.model import Quality, Reason
from drivers.serial_line.config import ChecksumConfig, LineFormat, SerialLinePointConfig
from drivers.serial_line.parser import LineParser, LineSplitter, LineStatus, checksum_text

LINES = 100_000


def _p(**kw: object) -> SerialLinePointConfig:
    return SerialLinePointConfig.model_validate(kw)


def _analyser() -> tuple[LineParser, Callable[[random.Random], bytes]]:
    line = LineFormat(
        command="READ\r",
        pattern=r"T=(?P<t>\S+?)NTU\s+CL=(?P<cl>\S+)\s+PH=(?P<ph>\S+)",
        checksum=ChecksumConfig(kind="sum8"),
    )
    parser = LineParser(line, [_p(id="t"), _p(id="cl"), _p(id="ph", valid_min=0, valid_max=14)])

    def good(rng: random.Random) -> bytes:
        body = f"T={rng.uniform(0, 5):.2f}NTU CL={rng.uniform(0, 1):.2f} PH={rng.uniform(5, 9):.2f}".encode()
        return body + b"*" + checksum_text(line.checksum, body).encode()  # type: ignore[arg-type]

    return parser, good


def _level() -> tuple[LineParser, Callable[[random.Random], bytes]]:
    line = LineFormat(
        command="#{address}RD\r",
        prefix="!{address}",
        pattern=r"^!(?P<addr>\d{2})(?P<body>[+-]\d{3}\.\d{3}[+-]\d{3}\.\d)(?P<cs>[0-9A-Fa-f]{4})$",
        checksum=ChecksumConfig(kind="crc16_modbus", group="cs"),
    )
    parser = LineParser(
        line,
        [
            _p(id="level", columns=[3, 11], scale=1.0),
            _p(id="temp", columns=[11, 17]),
            _p(id="st", field=0, type="string"),
        ],
        address="01",
    )

    def good(rng: random.Random) -> bytes:
        body = f"!01{rng.uniform(-5, 99):+08.3f}{rng.uniform(-20, 60):+06.1f}".encode()
        return body + checksum_text(line.checksum, body).encode()  # type: ignore[arg-type]

    return parser, good


_EVENTS = ("火警", "故障", "故障恢复", "监管", "启动", "反馈", "屏蔽")


def _panel() -> tuple[LineParser, Callable[[random.Random], bytes]]:
    line = LineFormat(
        mode="unsolicited",
        pattern=r"^(?P<date>\d{4}-\d{2}-\d{2})\s+(?P<time>\d{2}:\d{2}:\d{2})\s+(?P<event>\S+)\s+"
        r"回路(?P<loop>\d+)\s+地址(?P<address>\d+)(?:\s+(?P<location>\S+))?(?:\s+(?P<kind>\S+))?\s*$",
    )
    parser = LineParser(
        line,
        [
            _p(
                id="event", type="enum", enum=dict(enumerate(_EVENTS, 1)), enum_zh=dict(enumerate(_EVENTS, 1))
            ),
            _p(id="loop", type="int"),
            _p(id="address", type="int", valid_min=1, valid_max=255),
            _p(id="location", type="string"),
            _p(
                id="fire",
                type="bool",
                pattern=r"^\S+\s+\S+\s+(火警|复位)",
                true_values=["火警"],
                false_values=["复位"],
            ),
            _p(id="fault", type="bool", group="event", match="^故障$"),
        ],
        encoding="gb18030",
    )

    def good(rng: random.Random) -> bytes:
        return (
            f"2026-12-04 03:{rng.randrange(60):02d}:{rng.randrange(60):02d} {rng.choice(_EVENTS)} "
            f"回路{rng.randrange(1, 9)} 地址{rng.randrange(1, 256):03d} B座{rng.randrange(1, 30)}层 感烟"
        ).encode("gb18030")

    return parser, good


def _fields() -> tuple[LineParser, Callable[[random.Random], bytes]]:
    line = LineFormat(mode="unsolicited", separator=",", checksum=ChecksumConfig(kind="xor8", delimiter="#"))
    parser = LineParser(
        line,
        [_p(id="a", field=0, type="int"), _p(id="b", field=1, scale=0.1), _p(id="c", field=-1, type="bool")],
        encoding="utf-8",
    )

    def good(rng: random.Random) -> bytes:
        flag = rng.choice(["on", "off", "1", "0"])
        body = f"{rng.randrange(-999, 999)},{rng.randrange(10000)},{flag}".encode()
        return body + b"#" + checksum_text(line.checksum, body).encode()  # type: ignore[arg-type]

    return parser, good


_NOISE = (
    b"\r\n\x00*#!:+-.,= 0123456789ABCDEFabcdefTNUCLPH\xff\xfe\x80\x81\xa1\xb0"
    + "火警回路地址复位".encode("gb18030")
)


def _mutate(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[pos:pos] = bytes([rng.choice(_NOISE)])
        elif op == 2 and data:
            del data[min(pos, len(data) - 1)]
        elif op == 3:
            del data[pos:]
        elif op == 4:
            data[pos:pos] = data[rng.randrange(len(data) + 1) :][:8]
        elif op == 5:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        else:
            data[pos:pos] = rng.choice(("火警", "９", "\u00a0", "１２", "\ufffd")).encode("utf-8")
    return bytes(data)


def _random_line(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
    return bytes(rng.choice(_NOISE) for _ in range(rng.randrange(0, 60)))


def _check(parser: LineParser, raw: bytes) -> None:
    result = parser.parse(raw)
    if result.status in (LineStatus.BAD_CHECKSUM, LineStatus.OTHER_DEVICE, LineStatus.EMPTY):
        assert result.readings == ()
    for reading in result.readings:
        if reading.quality is Quality.GOOD:
            assert reading.reason is Reason.NONE
            if isinstance(reading.value, float):
                assert math.isfinite(reading.value)
        else:
            assert reading.reason in (Reason.DEVICE_ERROR, Reason.OUT_OF_RANGE)


def test_random_and_mutated_lines_never_raise() -> None:
    rng = random.Random(20261204)
    makers = [_analyser(), _level(), _panel(), _fields()]
    per = LINES // len(makers)
    total = 0
    for parser, good in makers:
        for i in range(per):
            raw = _mutate(rng, good(rng)) if i % 2 else _random_line(rng)
            _check(parser, raw)
            total += 1
        # Good lines still parse after all that.
        ok = parser.parse(good(rng))
        assert ok.status is LineStatus.OK
        assert all(r.quality is Quality.GOOD for r in ok.readings), ok
    assert total >= LINES


def test_a_good_line_after_garbage_is_always_parsed() -> None:
    rng = random.Random(7)
    for terminator in (b"\r\n", b"\n", b"\r", b"\x03"):
        for parser, good in (_analyser(), _panel()):
            splitter = LineSplitter(terminator, 256)
            for _ in range(2000):
                garbage = _random_line(rng) * rng.randrange(1, 12)  # sometimes over-long
                chunks = garbage + terminator + (want := good(rng)) + terminator
                lines: list[bytes] = []
                while chunks:  # arbitrary read sizes
                    cut = rng.randrange(1, 40)
                    lines += splitter.feed(chunks[:cut])
                    chunks = chunks[cut:]
                assert lines and lines[-1] == want
                assert splitter.pending == 0
                result = parser.parse(lines[-1])
                assert result.status is LineStatus.OK
                for line in lines[:-1]:
                    _check(parser, line)
