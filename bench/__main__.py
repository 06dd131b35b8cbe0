"""`make bench`: run every benchmark (or those named) and print a summary of the figures.

Each benchmark is a module of this package with a ``main(argv) -> dict`` that prints its own
report and writes ``bench/results/NAME.json``. Benchmarks are measurements, not tests.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

ALL = (
    "e2e_scale",  # the headline: N devices to the broker, measured from outside
    "backlog_drain",  # 5 M backlog samples to central while 500 devices keep polling
    "outbox",
    "modbus_client",
    "modbus_link_memory",  # bytes per connected Modbus TCP link, against the pymodbus-based one
    "poll_scale",
    "rules_throughput",
    "alarm_latency",
    "sync",
    "dashboard_render",
    "rtu_bus",
    "gb26875",
    "bacnet_read",
    "bacnet_cov",
    "opcua_subscribe",
    "downlink",  # a command from central's API to a simulated device and its result back
)
RESULTS = Path(__file__).resolve().parent / "results"


def plan(argv: list[str]) -> list[tuple[str, list[str]]]:
    """Bench names, each with the flags after it: ``e2e_scale --counts 500 sync`` runs two."""
    here = Path(__file__).resolve().parent
    runs: list[tuple[str, list[str]]] = []
    for arg in argv:
        is_name = not arg.startswith("-") and (here / f"{arg}.py").is_file()
        if is_name or not runs:
            runs.append((arg, []))
        else:
            runs[-1][1].append(arg)
    return runs or [(name, []) for name in ALL]


def main(argv: list[str]) -> int:
    failed: list[str] = []
    for name, flags in plan(argv):
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"== {name}: not present in this tree", flush=True)
                continue
            raise
        print(f"== {name}", flush=True)
        started = time.monotonic()
        code = module.main(flags)
        # main() returns its figures (a dict) or an exit status; only a non-zero status fails
        if isinstance(code, int) and code != 0:
            failed.append(name)
        print(f"== {name} finished in {time.monotonic() - started:.1f} s", flush=True)
    print("\nSaved results:")
    for path in sorted(RESULTS.glob("*.json")):
        summary = json.loads(path.read_text()).get("summary")
        print(f"  {path.name}: {json.dumps(summary, ensure_ascii=False) if summary else '(see file)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
