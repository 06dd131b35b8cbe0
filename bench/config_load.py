"""How long ``load_site`` takes for a large site (500 devices), and where the time goes.

The site is generated into a temporary folder: 40 RS-485 lines and a TCP network; 400 meters by
profile (every fourth with point patches) and 100 devices with six inline points each. Reported:
the whole ``load_site`` (YAML parse, validation, profile merge, checks), the YAML read alone
(the fast safe parser; a clean file never needs the round-trip one), and the failure path on the
same site with one mistake per 50 devices, which adds the round-trip parse that locates them.

Run: ``.venv/bin/python -m bench.config_load``; writes ``bench/results/config_load.json``.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from core.errors import ConfigError
from edge.config.loader import load_site, read_yaml

RESULTS = Path(__file__).resolve().parent / "results" / "config_load.json"
DEVICES = 500
REPEATS = 5


def _site_text(devices: int, *, mistakes: bool = False) -> str:
    lines = ["site: {id: bench-estate}", "gateway: {id: gw-bench, data_dir: data}", "buses:"]
    for line in range(40):
        lines.append(f"  - {{id: rs485-{line}, type: modbus_rtu, port: /dev/ttyUSB{line}}}")
    lines.append("  - {id: lan, type: modbus_tcp, host: 10.0.0.1}")
    lines.append("devices:")
    for n in range(devices):
        if n % 5 == 4:
            lines += [
                f"  - id: plc-{n}",
                "    bus: lan",
                f"    host: 10.0.{n // 200}.{n % 200 + 2}",
                "    points:",
            ]
            for p in range(6):
                lines.append(f"      - {{id: p{p}, address: {p * 2}, type: float32, unit: bar}}")
            continue
        profile = "eastron-sdm630" if n % 2 else "chint-dtsu666"
        unit = "x" if mistakes and n % 50 == 0 else str(n // 40 + 1)
        lines += [
            f"  - id: meter-{n}",
            f"    bus: rs485-{n % 40}",
            f"    unit: {unit}",
            f"    profile: {profile}",
        ]
        if n % 4 == 0:
            lines += [
                "    points:",
                "      - {id: frequency, poll_interval_s: 60}",
                "      - {id: power_factor, enabled: false}",
            ]
    return "\n".join(lines) + "\n"


def _median_s(action: Callable[[], object]) -> float:
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _load_broken(path: Path) -> int:
    try:
        load_site(path)
    except ConfigError as exc:
        return len(exc.problems)
    raise AssertionError("the broken site loaded")


def main(argv: list[str]) -> int:
    del argv
    with tempfile.TemporaryDirectory() as folder:
        good = Path(folder) / "site.yaml"
        good.write_text(_site_text(DEVICES), encoding="utf-8")
        bad = Path(folder) / "broken.yaml"
        bad.write_text(_site_text(DEVICES, mistakes=True), encoding="utf-8")
        site = load_site(good)
        points = sum(len(d.points) for d in site.devices)
        problems = _load_broken(bad)
        load_s = _median_s(lambda: load_site(good))
        parse_s = _median_s(lambda: read_yaml(good))
        broken_s = _median_s(lambda: _load_broken(bad))
        lines = len(good.read_text(encoding="utf-8").splitlines())
    summary = {
        "devices": len(site.devices),
        "points": points,
        "site_file_lines": lines,
        "load_site_s": round(load_s, 3),
        "yaml_parse_s": round(parse_s, 3),
        "load_with_problems_s": round(broken_s, 3),
        "problems_reported": problems,
    }
    for key, value in summary.items():
        print(f"  {key:22} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"summary": summary, "python": sys.version.split()[0], "machine": platform.machine()},
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
