"""The table every chaos run prints, and the JSON file it leaves (bench/results/chaos.json)."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chaos.scenarios import Durations, Result

__all__ = ["RESULTS", "render_table", "save"]

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results" / "chaos.json"

_COLUMNS = (
    "scenario",
    "faults",
    "survived",
    "produced",
    "stored",
    "lost",
    "duplicated",
    "evicted",
    "events",
    "s",
)


def _row(result: Result) -> tuple[str, ...]:
    t = result.tally
    events = f"{t.events_produced}" + (f" ({t.events_lost} lost)" if t.events_lost else "")
    return (
        result.scenario,
        str(result.faults),
        "yes" if result.survived else "NO",
        str(t.produced),
        str(t.stored),
        str(t.lost),
        str(t.duplicated + t.events_duplicated),
        str(t.evicted),
        events,
        f"{result.seconds:.0f}",
    )


def render_table(results: Sequence[Result]) -> str:
    rows = [_COLUMNS, *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"

    out = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows[1:]]
    for result in results:
        if result.tally.problems:
            out.append(f"  {result.scenario}: " + "; ".join(result.tally.problems))
    return "\n".join(out)


def save(results: Sequence[Result], durations: Durations, *, profile: str, path: Path = RESULTS) -> Path:
    doc: dict[str, Any] = {
        "name": "chaos",
        "profile": profile,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "durations": asdict(durations),
        "all_ok": all(r.ok for r in results),
        "scenarios": [r.as_dict() for r in results],
        "table": render_table(results),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path
