"""Rule throughput: samples per second through 2,000 alarm definitions and 50 linkage rules.

Site: 900 analog points with a high and a low alarm each (deadband, some with delays), 200
fire detectors (4 per zone, 50 zones) with a latched fire alarm, and one GB 50116 linkage rule
per zone (two fire alarms in the zone → release doors, lighting, vents). Three feeds are timed:
every sample a new value (the worst case for the fast path), half the samples repeating the
previous value (typical polling), and a fire storm in which every zone's linkage runs.
Target (issue): at least 200,000 samples/s through the rules, pure Python, one core.

Run: ``python -m bench.rules_throughput``; saves ``bench/results/rules_throughput.json``.
"""

from __future__ import annotations

import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

from core.model import Quality, Sample
from rules.compiled import CompiledRules, PointRules, compile_rules
from rules.evaluator import RulesEngine

RESULTS = Path(__file__).resolve().parent / "results" / "rules_throughput.json"
SITE = "bench"
T0 = 1_767_225_600.0
ANALOG = 900
ZONES = 50
DETECTORS_PER_ZONE = 4
SAMPLES = 400_000
TARGET = 200_000


def build() -> CompiledRules:
    points: list[PointRules] = []
    for i in range(ANALOG):
        delays: dict[str, Any] = {"on_delay_s": 15.0, "off_delay_s": 15.0} if i % 3 == 0 else {}
        points.append(
            PointRules(
                f"{SITE}/dev{i // 10}/ai{i % 10}",
                str(i % ZONES),
                [
                    {"id": "high", "kind": "high", "setpoint": 90.0, "deadband": 2.0, **delays},
                    {"id": "low", "kind": "low", "setpoint": 10.0, "deadband": 2.0, "priority": "low"},
                ],
            )
        )
    fire = [{"id": "fire", "kind": "state", "priority": "fire", "latched": True}]
    for z in range(ZONES):
        for d in range(DETECTORS_PER_ZONE):
            points.append(PointRules(f"{SITE}/fp/z{z}d{d}", str(z), fire))
        for out in ("doors", "light", "vent", "vent_fb", "fan"):
            points.append(PointRules(f"{SITE}/z{z}/{out}", str(z)))
    linkage = [
        {
            "id": f"fire-z{z}",
            "trigger": f'count(alarms(zone="{z}", class="fire")) >= 2',
            "steps": [
                {"write": f"z{z}.doors", "value": True},
                {"write": f"z{z}.light", "value": True, "delay_s": 1},
                {"write": f"z{z}.vent", "value": True},
                {"wait_for": {"point": f"z{z}.vent_fb", "equals": True}},
                {"write": f"z{z}.fan", "value": True},
            ],
            "restore": [{"write": f"z{z}.doors", "value": False}],
        }
        for z in range(ZONES)
    ]
    return compile_rules(SITE, points, {"linkage": linkage})


def samples(repeat_share: float, seed: int = 7) -> list[Sample]:
    """A random walk per analog point (rarely crossing a threshold), plus quiet detectors."""
    rng = random.Random(seed)
    ids = [f"{SITE}/dev{i // 10}/ai{i % 10}" for i in range(ANALOG)]
    detectors = [f"{SITE}/fp/z{z}d{d}" for z in range(ZONES) for d in range(DETECTORS_PER_ZONE)]
    level = [50.0] * ANALOG
    out: list[Sample] = []
    for n in range(SAMPLES):
        ts = T0 + n / 10_000
        if n % 10 == 9:
            out.append(Sample(detectors[rng.randrange(len(detectors))], False, Quality.GOOD, ts))
            continue
        i = rng.randrange(ANALOG)
        if rng.random() >= repeat_share:
            level[i] = min(100.0, max(0.0, level[i] + rng.uniform(-3.0, 3.0)))
        out.append(Sample(ids[i], round(level[i], 2), Quality.GOOD, ts))
    return out


def run(rules: CompiledRules, feed: list[Sample], storm: bool = False) -> dict[str, Any]:
    engine = RulesEngine(rules, T0)
    events = commands = 0
    started = time.perf_counter()
    for n, s in enumerate(feed):
        engine.feed(s)
        if n % 10_000 == 9_999:  # the daemon ticks once a second; here every 10k samples
            engine.tick(s.receipt_ts)
            out = engine.drain()
            events += len(out.events)
            commands += len(out.commands)
            if storm:
                z = (n // 10_000) % ZONES
                for d in range(2):
                    engine.feed(Sample(f"{SITE}/fp/z{z}d{d}", True, Quality.GOOD, s.receipt_ts))
    elapsed = time.perf_counter() - started
    out = engine.drain()
    return {
        "samples": len(feed),
        "seconds": round(elapsed, 3),
        "samples_per_s": round(len(feed) / elapsed),
        "events": events + len(out.events),
        "commands": commands + len(out.commands),
    }


def main(argv: list[str]) -> int:
    del argv
    t = time.perf_counter()
    rules = build()
    compile_s = time.perf_counter() - t
    changing = samples(0.0)
    typical = samples(0.5)
    results = {
        "every_sample_changes": run(rules, changing),
        "half_repeat_values": run(rules, typical),
        "fire_storm_all_zones": run(rules, changing, storm=True),
    }
    summary = {
        "alarm_definitions": sum(1 for a in rules.alarms),
        "linkage_rules": len(rules.linkage),
        "compile_s": round(compile_s, 3),
        **{f"{k}_samples_per_s": v["samples_per_s"] for k, v in results.items()},
        "target_samples_per_s": TARGET,
    }
    for key, value in summary.items():
        print(f"  {key:42} {value}")
    for name, r in results.items():
        print(f"  {name}: {r}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "summary": summary,
                "runs": results,
                "python": sys.version.split()[0],
                "machine": platform.machine(),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
