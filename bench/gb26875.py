"""GB/T 26875.3 frames decoded per second on one core: the streaming frame decoder, and the
frame decoder plus the information-object codec (what the gateway does with each frame).

The stream is built before timing: frames as a transmission device sends them (mostly one
component status per frame, the fire/fault case; system status, analog values, heartbeats
and a few multi-object frames), concatenated and cut into 4,096-byte reads like a socket's.
Phases:

- ``frames``: ``StandardDecoder.feed`` only (framing, checksum, header);
- ``frames_objects``: the same plus ``decode_adu`` of every frame's data;
- ``component_only``: every frame one component status (46-byte object), frame + objects.

Target: >= 50,000 frames/s (frame + objects) on one core.

Run: ``.venv/bin/python -m bench.gb26875 [--seconds S]``; writes ``bench/results/gb26875.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

from drivers.gb26875.frame import Command, Frame, StandardFraming, TimeTag
from drivers.gb26875.objects import (
    AnalogValue,
    ComponentStatus,
    InfoObject,
    SystemStatus,
    TypeFlag,
    UitdStatus,
    decode_adu,
    encode_adu,
)

RESULTS = Path(__file__).resolve().parent / "results" / "gb26875.json"
TARGET_FRAMES_PER_S = 50_000
READ_SIZE = 4096
FRAMES = 20_000


def _stream(rng: random.Random, mix: str) -> tuple[list[bytes], int]:
    framing = StandardFraming()
    tag = TimeTag(37, 17, 3, 1, 6, 2024)
    src, dst = bytes.fromhex("2c312c320000"), bytes(6)
    raw = bytearray()
    for serial in range(FRAMES):
        pick = rng.random() if mix == "mixed" else 0.0
        objects: list[InfoObject]
        if pick < 0.6:
            type_flag = TypeFlag.COMPONENT_STATUS
            objects = [ComponentStatus(1, 1, 42, rng.randrange(1, 512), 0x0003, "1号楼3层走廊烟感", tag)]
        elif pick < 0.7:
            type_flag = TypeFlag.COMPONENT_STATUS
            objects = [ComponentStatus(1, 1, 42, a, 0x0005, "故障", tag) for a in range(1, 6)]
        elif pick < 0.8:
            type_flag, objects = TypeFlag.SYSTEM_STATUS, [SystemStatus(1, 1, 0x0003, tag)]
        elif pick < 0.9:
            type_flag, objects = TypeFlag.ANALOG_VALUE, [AnalogValue(1, 1, 91, 1, 4, rng.randrange(20), tag)]
        else:
            type_flag, objects = TypeFlag.UITD_STATUS, [UitdStatus(1, tag)]
        data = encode_adu(type_flag, objects)
        raw += framing.encode(Frame(serial, Command.SEND, src, dst, tag, data))
    chunks = [bytes(raw[i : i + READ_SIZE]) for i in range(0, len(raw), READ_SIZE)]
    return chunks, FRAMES


def _run_phase(chunks: list[bytes], per_pass: int, seconds: float, *, objects: bool) -> dict[str, Any]:
    framing = StandardFraming()
    frames = 0
    objs = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    while time.perf_counter() - started < seconds:
        decoder = framing.decoder()
        for chunk in chunks:
            for item in decoder.feed(chunk):
                if objects and isinstance(item, Frame):
                    adu = decode_adu(item.data)
                    objs += 0 if adu is None else len(adu.objects)
        frames += per_pass
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "frames": frames,
        "objects": objs,
        "seconds": round(elapsed, 3),
        "frames_per_s": round(frames / elapsed),
        "cpu_us_per_frame": round(cpu / frames * 1e6, 2),
        # The machine is shared: CPU time is what one core spent, whatever else ran.
        "frames_per_cpu_s": round(frames / cpu) if cpu > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench.gb26875", description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    args = parser.parse_args(argv or [])
    rng = random.Random(26875)
    mixed, per_pass = _stream(rng, "mixed")
    component, per_pass_c = _stream(rng, "component")
    phases = {
        "frames": _run_phase(mixed, per_pass, args.seconds, objects=False),
        "frames_objects": _run_phase(mixed, per_pass, args.seconds, objects=True),
        "component_only": _run_phase(component, per_pass_c, args.seconds, objects=True),
    }
    rate = min(phases["frames_objects"]["frames_per_s"], phases["component_only"]["frames_per_s"])
    result = {
        "summary": {
            "frames_per_s": rate,
            "frames_per_cpu_s": phases["frames_objects"]["frames_per_cpu_s"],
            "target_frames_per_s": TARGET_FRAMES_PER_S,
            "met": rate >= TARGET_FRAMES_PER_S,
        },
        "phases": phases,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "read_size": READ_SIZE,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, phase in phases.items():
        print(
            f"{name:15s} {phase['frames_per_s']:>10,} frames/s  {phase['cpu_us_per_frame']:6.2f} µs CPU/frame"
        )
    verdict = "meets" if rate >= TARGET_FRAMES_PER_S else "MISSES"
    print(
        f"{rate:,} frames/s (frame + objects) {verdict} the target of {TARGET_FRAMES_PER_S:,}; "
        f"saved {RESULTS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
