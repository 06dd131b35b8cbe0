"""MBAP framing: known frames, frames split across chunks or several in one, and headers that
cannot be Modbus TCP (protocol id, length) refused as soon as they are in."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.mbap import MAX_ADU, MAX_PDU, Frame, encode, split_frames
from tests.fuzz.support import fuzz_settings


def reference_frame(tid: int, unit: int, pdu: bytes, protocol: int = 0) -> bytes:
    """Written out field by field from the spec, not via the module."""
    return (
        tid.to_bytes(2, "big")
        + protocol.to_bytes(2, "big")
        + (len(pdu) + 1).to_bytes(2, "big")
        + bytes((unit,))
        + pdu
    )


def test_known_request_frame() -> None:
    # Read 10 holding registers from 0, unit 1, transaction 1 (Modbus Messaging on TCP/IP §3.1.3).
    pdu = bytes.fromhex("030000000a")
    assert encode(1, 1, pdu) == bytes.fromhex("0001 0000 0006 01 03 0000 000a")
    assert encode(0xFFFF, 255, pdu) == reference_frame(0xFFFF, 255, pdu)


def test_encode_refuses_pdus_no_frame_can_carry() -> None:
    with pytest.raises(ValueError):
        encode(1, 1, b"")
    with pytest.raises(ValueError):
        encode(1, 1, bytes(MAX_PDU + 1))
    assert len(encode(1, 1, bytes(MAX_PDU))) == MAX_ADU


def test_one_whole_frame() -> None:
    answer = reference_frame(7, 3, bytes.fromhex("0304000a0014"))
    split = split_frames(answer)
    assert split.frames == [Frame(7, 3, bytes.fromhex("0304000a0014"))]
    assert (split.consumed, split.error) == (len(answer), None)


def test_a_frame_split_across_chunks_is_kept_until_complete() -> None:
    answer = reference_frame(9, 1, bytes.fromhex("0302abcd"))
    for cut in range(len(answer)):
        first = split_frames(answer[:cut])
        assert (first.frames, first.consumed, first.error) == ([], 0, None), cut
        rest = answer[first.consumed : cut] + answer[cut:]
        assert split_frames(rest).frames == [Frame(9, 1, bytes.fromhex("0302abcd"))], cut


def test_two_frames_in_one_chunk_and_a_partial_third() -> None:
    first = reference_frame(1, 1, bytes((0x83, 2)))
    second = reference_frame(2, 1, bytes.fromhex("03 02 0001"))
    third = reference_frame(3, 1, bytes.fromhex("0600010002"))
    split = split_frames(first + second + third[:5])
    assert [f.tid for f in split.frames] == [1, 2]
    assert split.frames[0].pdu == bytes((0x83, 2))
    assert (split.consumed, split.error) == (len(first) + len(second), None)


def test_a_wrong_protocol_id_is_refused_at_once() -> None:
    good = reference_frame(1, 1, bytes((0x83, 2)))
    bad = reference_frame(2, 1, bytes((0x83, 2)), protocol=1)
    # Judged from the first six bytes: no waiting for the length it announces.
    split = split_frames(good + bad[:6])
    assert [f.tid for f in split.frames] == [1]
    assert split.consumed == len(good)
    assert split.error is not None and "protocol id" in split.error
    assert split_frames(b"HTTP/1.1 400 Bad Request\r\n\r\n").error is not None


@pytest.mark.parametrize("length", [0, 1, MAX_PDU + 2, 0xFFFF])
def test_an_impossible_length_is_refused(length: int) -> None:
    header = struct.pack(">HHHB", 1, 0, length, 1)
    split = split_frames(header)
    assert split.frames == [] and split.consumed == 0
    assert split.error is not None and "length" in split.error


def test_the_longest_frame_is_accepted() -> None:
    pdu = bytes((3, 251)) + bytes(251)
    assert len(pdu) == MAX_PDU
    assert split_frames(reference_frame(4, 1, pdu)).frames == [Frame(4, 1, pdu)]


frames = st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255), st.binary(min_size=1, max_size=MAX_PDU)).map(
    lambda f: Frame(*f)
)


@fuzz_settings()
@given(st.lists(frames, min_size=1, max_size=6), st.data())
def test_any_chunking_of_a_stream_gives_back_its_frames(sent: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(encode(*f) for f in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    got: list[Frame] = []
    buffer = b""
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        buffer += stream[start:end]
        split = split_frames(buffer)
        assert split.error is None
        got.extend(split.frames)
        buffer = buffer[split.consumed :]
        # What a caller keeps between chunks is always less than one frame.
        assert len(buffer) < MAX_ADU
    assert got == sent
    assert buffer == b""


@fuzz_settings()
@given(st.binary(max_size=600))
def test_any_bytes_split_without_surprises(data: bytes) -> None:
    split = split_frames(data)
    assert 0 <= split.consumed <= len(data)
    assert sum(7 + len(f.pdu) for f in split.frames) == split.consumed
    if split.error is None:
        assert len(data) - split.consumed < MAX_ADU
