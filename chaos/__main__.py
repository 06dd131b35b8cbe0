"""``python -m chaos`` (``make chaos``): run the scenarios, print the table, save the results.

    python -m chaos                        # every scenario, full durations (issue 17's numbers)
    python -m chaos --profile short        # the bounded durations of the make-test subset
    python -m chaos gateway_kill9 disk_full --gateway-kills 10 --outage-s 60

Exit status 0 only if every scenario survived with 0 lost and 0 duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
from pathlib import Path

from chaos.disk import NeedsRoot
from chaos.report import RESULTS, render_table, save
from chaos.scenarios import FULL, SCENARIOS, SHORT, Durations, Result, run_scenario


def _say(text: str, *, err: bool = True) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m chaos", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"default: all of {', '.join(SCENARIOS)}")
    p.add_argument("--profile", choices=("full", "short"), default="full")
    p.add_argument("--gateway-kills", type=int)
    p.add_argument("--central-kills", type=int)
    p.add_argument("--outage-s", type=float, help="broker and central outages")
    p.add_argument("--link-s", type=float, help="partition and slow link")
    p.add_argument("--workdir", type=Path, help="keep the rigs' files here (default: a temp folder)")
    p.add_argument("--results", type=Path, default=RESULTS)
    return p


def _durations(args: argparse.Namespace) -> Durations:
    d = FULL if args.profile == "full" else SHORT
    changes: dict[str, object] = {}
    if args.gateway_kills is not None:
        changes["gateway_kills"] = args.gateway_kills
    if args.central_kills is not None:
        changes["central_kills"] = args.central_kills
    if args.outage_s is not None:
        changes["broker_outage_s"] = changes["central_outage_s"] = args.outage_s
    if args.link_s is not None:
        changes["partition_s"] = changes["slow_link_s"] = args.link_s
    return dataclasses.replace(d, **changes)  # type: ignore[arg-type]


async def _run(names: list[str], root: Path, durations: Durations) -> list[Result]:
    results: list[Result] = []
    for name in names:
        _say(f"chaos: {name} ...")
        try:
            result = await run_scenario(name, root, durations)
        except NeedsRoot as exc:
            _say(f"chaos: {name} not run: {exc}")
            continue
        except AssertionError as exc:
            _say(f"chaos: {name} FAILED: {exc}")
            from chaos.ledger import Tally

            result = Result(name, 0, False, Tally(problems=[str(exc).splitlines()[0]]))
        results.append(result)
        _say(render_table([result]).splitlines()[-1])
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from edge.logs import configure_logging

    configure_logging("warning", json=False)  # the harness's own progress lines are enough
    names = list(args.scenarios) or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        _parser().error(f"no scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    durations = _durations(args)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(_run(names, args.workdir, durations))
    else:
        with tempfile.TemporaryDirectory(prefix="gatehouse-chaos-") as tmp:
            results = asyncio.run(_run(names, Path(tmp), durations))
    _say(render_table(results), err=False)
    path = save(results, durations, profile=args.profile, path=args.results)
    _say(f"\nsaved {path}", err=False)
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
