"""GB/T 26875.3 framing: round trips, the real captured frame, resync, and 100k-frame fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import FramingError
from drivers.gb26875.frame import (
    MAX_DATA_LEN,
    ChecksumError,
    EndMarkerError,
    Frame,
    Gb26875FramingError,
    LengthError,
    Rejected,
    StandardFraming,
    TimeFormat,
    TimeTag,
    TruncatedFrame,
    pack_time,
    unpack_time,
)
from drivers.gb26875.objects import ComponentStatus, decode_adu, fire, in_test

# The capture from DOMAIN.md; its 31 text bytes are elided there. The known bytes sum to
# 0xEC, so the text must sum to 0x5B (mod 256) for its checksum 0x47 to hold: this text does.
CAPTURE_HEAD = bytes.fromhex(
    "4040 1400 1000 0509091b0715 2c312c320000 784d07918e23 3000 02 0201 0101 2a 01000100 0200"
)
CAPTURE_TAIL = bytes.fromhex("251103 01060c 47 2323")
CAPTURE_TEXT = "1号楼3层走廊烟感109号"


def capture(text: bytes) -> bytes:
    assert len(text) == 31
    return CAPTURE_HEAD + text + CAPTURE_TAIL


def text_bytes() -> bytes:
    return CAPTURE_TEXT.encode("gb18030").ljust(31, b"\0")


def test_the_captured_frame_decodes_to_its_documented_fields() -> None:
    assert sum(CAPTURE_HEAD[2:]) + sum(CAPTURE_TAIL[:6]) & 0xFF == 0xEC
    assert sum(text_bytes()) & 0xFF == 0x5B
    frame = StandardFraming().decode(capture(text_bytes()))
    assert frame.serial == 20
    assert frame.version == (0x10, 0x00)
    assert frame.time == TimeTag(5, 9, 9, 27, 7, 2021)
    assert frame.source == bytes.fromhex("2c312c320000")
    assert frame.destination == bytes.fromhex("784d07918e23")
    assert frame.command == 2
    assert len(frame.data) == 48
    adu = decode_adu(frame.data)
    assert adu is not None and adu.type_flag == 2
    (obj,) = adu.objects
    assert isinstance(obj, ComponentStatus)
    assert (obj.sys_type, obj.sys_addr, obj.comp_type, obj.comp_addr) == (1, 1, 42, 0x00010001)
    assert obj.status == 0x0002
    assert fire(obj.status)  # bit 0 is clear, and it is a fire all the same (caution 2)
    assert in_test(obj.status)
    assert obj.description == CAPTURE_TEXT
    # Caution 3: the object's clock says 2012, the header's 2021; both are kept.
    assert obj.time == TimeTag(37, 17, 3, 1, 6, 2012)
    assert obj.time.to_epoch(8 * 3600) == pytest.approx(1338491857.0)


def test_the_capture_padded_with_zeros_fails_its_checksum() -> None:
    with pytest.raises(ChecksumError):
        StandardFraming().decode(capture(bytes(31)))
    out = StandardFraming().decoder().feed(capture(bytes(31)))
    assert len(out) == 1 and isinstance(out[0], Rejected)
    assert isinstance(out[0].error, ChecksumError) and isinstance(out[0].error, FramingError)


def test_the_captured_frame_re_encodes_byte_for_byte() -> None:
    raw = capture(text_bytes())
    assert StandardFraming().encode(StandardFraming().decode(raw)) == raw


tags = st.builds(
    TimeTag,
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(2000, 2099),
)
frames = st.builds(
    Frame,
    serial=st.integers(0, 0xFFFF),
    command=st.integers(0, 255),
    source=st.binary(min_size=6, max_size=6),
    destination=st.binary(min_size=6, max_size=6),
    time=tags,
    data=st.binary(max_size=MAX_DATA_LEN),
    version=st.tuples(st.integers(0, 255), st.integers(0, 255)),
)


@given(frames, st.sampled_from(list(TimeFormat)))
def test_frames_round_trip(frame: Frame, fmt: TimeFormat) -> None:
    framing = StandardFraming(fmt)
    raw = framing.encode(frame)
    assert len(raw) == 30 + len(frame.data)
    assert framing.decode(raw) == frame
    assert framing.decoder().feed(raw) == [frame]


@given(tags, st.sampled_from(list(TimeFormat)))
def test_time_tags_round_trip(tag: TimeTag, fmt: TimeFormat) -> None:
    assert unpack_time(pack_time(tag, fmt), fmt) == tag


def test_bcd_time_tags_read_as_written_and_bad_nibbles_name_no_time() -> None:
    tag = unpack_time(bytes.fromhex("05 09 09 27 07 21"), TimeFormat.BCD)
    assert tag == TimeTag(5, 9, 9, 27, 7, 2021)
    broken = unpack_time(bytes.fromhex("5a 09 09 27 07 21"), TimeFormat.BCD)
    assert broken.second == -1 and broken.to_epoch(0) is None
    assert TimeTag(0, 0, 0, 31, 2, 2021).to_epoch(0) is None  # no 31 February


@given(frames, st.integers(1, 64))
def test_a_frame_fed_in_pieces_comes_out_once(frame: Frame, step: int) -> None:
    raw = StandardFraming().encode(frame)
    decoder = StandardFraming().decoder()
    out = []
    for i in range(0, len(raw), step):
        out += decoder.feed(raw[i : i + step])
    assert out == [frame]
    assert decoder.buffered == 0


def test_strict_decode_names_what_is_wrong() -> None:
    raw = bytearray(capture(text_bytes()))
    framing = StandardFraming()
    with pytest.raises(TruncatedFrame):
        framing.decode(bytes(raw[:-1]))
    bad_end = bytearray(raw)
    bad_end[-1] = 0x24
    with pytest.raises(EndMarkerError):
        framing.decode(bytes(bad_end))
    too_long = bytearray(raw)
    too_long[24:26] = (1025).to_bytes(2, "little")
    with pytest.raises(LengthError):
        framing.decode(bytes(too_long))


def good_frame(rng: random.Random) -> Frame:
    return Frame(
        serial=rng.randrange(65536),
        command=rng.choice((2, 3, 1)),
        source=rng.randbytes(6),
        destination=rng.randbytes(6),
        time=TimeTag(
            rng.randrange(60),
            rng.randrange(60),
            rng.randrange(24),
            1 + rng.randrange(28),
            1 + rng.randrange(12),
            2000 + rng.randrange(100),
        ),
        data=rng.randbytes(rng.choice((0, 2, 10, 48, rng.randrange(200)))),
    )


def mutate(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(5)
        if choice == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif choice == 1 and b:
            del b[rng.randrange(len(b)) :]
        elif choice == 2:
            b.insert(rng.randrange(len(b) + 1), rng.choice((0x40, 0x23, rng.randrange(256))))
        elif choice == 3 and len(b) > 26:
            b[24:26] = rng.randrange(65536).to_bytes(2, "little")
        else:
            b[:0] = b"@@" + rng.randbytes(rng.randrange(30))
    return bytes(b)


def test_100k_random_and_mutated_frames_raise_nothing_but_framing_errors() -> None:
    rng = random.Random(26875)
    framing = StandardFraming()
    decoder = framing.decoder()
    count = 0
    for _ in range(100_000):
        kind = rng.randrange(3)
        if kind == 0:
            chunk = rng.randbytes(rng.randrange(1, 80))
        else:
            chunk = mutate(rng, framing.encode(good_frame(rng)))
        count += 1
        for item in decoder.feed(chunk):
            assert isinstance(item, Frame | Rejected)
            if isinstance(item, Rejected):
                assert isinstance(item.error, Gb26875FramingError)
        try:
            framing.decode(chunk)
        except Gb26875FramingError:
            pass
        assert decoder.buffered <= 2 * (30 + MAX_DATA_LEN) + 80
    assert count == 100_000


def test_a_good_frame_after_garbage_is_always_decoded() -> None:
    rng = random.Random(7)
    framing = StandardFraming()
    for _ in range(5_000):
        frame = good_frame(rng)
        raw = framing.encode(frame)
        junk = (
            mutate(rng, framing.encode(good_frame(rng)))
            if rng.random() < 0.5
            else rng.randbytes(rng.randrange(60))
        )
        decoder = framing.decoder()
        stream = junk + raw
        out: list[Frame | Rejected] = []
        step = rng.choice((1, 7, 64, len(stream)))
        for i in range(0, len(stream), step):
            out += decoder.feed(stream[i : i + step])
        assert out and out[-1] == frame, (junk.hex(), raw.hex())


def test_a_broken_off_frame_does_not_hold_up_the_next() -> None:
    framing = StandardFraming()
    frame = good_frame(random.Random(3))
    raw = framing.encode(frame)
    # The start of a frame whose length promises 1,000 bytes, then a complete good frame.
    broken = raw[:24] + (1000).to_bytes(2, "little") + b"\x02"
    out = framing.decoder().feed(broken + raw)
    assert out[-1] == frame
    assert isinstance(out[0], Rejected) and isinstance(out[0].error, TruncatedFrame)
