"""`gatehouse rules test SITE.yaml SCENARIO.yaml`: try a site's rules before going live.

The scenario (see ``rules.replay`` and ``docs/rules.md``) is replayed on a simulated clock
through the same engine the daemon runs, with the site's profile alarms and ``rules:``
section. Every alarm transition, linkage audit step and write command is printed as a table;
the scenario's ``expect:`` list is then checked.

A scenario that embeds its own ``points:`` is self-contained and runs on those points; one
that embeds only ``rules:`` runs them instead of the site file's ``rules:`` section.

Exit status: 0 when the replay ran and every expectation was met, 1 when an expectation
failed or the site or scenario has mistakes, 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from core.errors import ConfigError
from edge.config.loader import load_site
from edge.rules_host.site import site_point_rules
from rules import CompiledRules, RulesError, compile_rules
from rules.replay import Scenario, check_expectations, format_table, replay, scenario_rules

_LOG = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNREADABLE = 2


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "rules",
        help="work with alarm and linkage rules (rule test mode)",
        description="Alarm and linkage rules: replay a scenario through a site's rules.",
    )
    rules_sub = parser.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    test = rules_sub.add_parser(
        "test",
        help="replay a scenario through the site's rules on a simulated clock",
        description=(
            "Replay SCENARIO.yaml (values set at given times, operator actions, write outcomes) "
            "through the alarms and linkage rules of SITE.yaml on a simulated clock; print every "
            "alarm transition, linkage step and command, then check the scenario's expectations."
        ),
    )
    test.add_argument("site", type=Path, metavar="SITE.yaml", help="the site file")
    test.add_argument("scenario", type=Path, metavar="SCENARIO.yaml", help="the scenario file")
    test.add_argument("--json", action="store_true", help="print rows and failures as one JSON object")
    test.set_defaults(handler=_handle_test)


def _handle_test(args: argparse.Namespace) -> int:
    as_json: bool = args.json
    try:
        site = load_site(args.site)
    except OSError as exc:
        print(f"{args.site}: cannot read: {exc.strerror or exc}")
        return EXIT_UNREADABLE
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        print(
            f"{len(exc.problems)} problem{'' if len(exc.problems) == 1 else 's'} in the site; fix them first"
        )
        return EXIT_PROBLEMS
    try:
        raw = YAML(typ="safe").load(Path(args.scenario).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"{args.scenario}: cannot read: {exc.strerror or exc}")
        return EXIT_UNREADABLE
    except YAMLError as exc:
        print(f"{args.scenario}: not valid YAML: {exc}")
        return EXIT_PROBLEMS
    try:
        scenario = Scenario.model_validate(raw or {})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = ".".join(str(p) for p in error["loc"]) or "(top level)"
            print(f"{args.scenario}: {where}: {error['msg']}")
        return EXIT_PROBLEMS
    try:
        rules = _rules_for(site, scenario)
    except RulesError as exc:
        for rule_problem in exc.problems:
            print(f"{args.scenario}: {rule_problem}")
        return EXIT_PROBLEMS
    mistakes = scenario_problems(rules, scenario)
    if mistakes:
        for mistake in mistakes:
            print(f"{args.scenario}: {mistake}")
        print(f"{len(mistakes)} problem{'' if len(mistakes) == 1 else 's'} in the scenario")
        return EXIT_PROBLEMS
    rows = replay(rules, scenario)
    failures = check_expectations(scenario, rows)
    if as_json:
        payload = {
            "scenario": scenario.name,
            "site": rules.site,
            "rows": [{"t_s": r.t_s, "event": r.kind, "source": r.source, "detail": r.detail} for r in rows],
            "expectations": len(scenario.expect),
            "failures": failures,
            "ok": not failures,
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return EXIT_PROBLEMS if failures else EXIT_OK
    counts = f"{len(rules.alarms)} alarms, {len(rules.linkage)} rules"
    print(f"scenario: {scenario.name} (site {rules.site}, {counts})")
    print(format_table(rows))
    print()
    for failure in failures:
        print(f"FAILED: {failure}")
    met = len(scenario.expect) - len(failures)
    print(f"{len(rows)} rows; {met} of {len(scenario.expect)} expectations met")
    return EXIT_PROBLEMS if failures else EXIT_OK


def _rules_for(site: Any, scenario: Scenario) -> CompiledRules:
    if scenario.points:
        return scenario_rules(scenario)
    section = scenario.rules if scenario.rules is not None else site.config.rules
    return compile_rules(site.id, site_point_rules(site), section)


def scenario_problems(rules: CompiledRules, scenario: Scenario) -> list[str]:
    """Points, alarms and rules a scenario names that the rules do not know (a typo would
    otherwise be replayed silently, and the rules would look wrong)."""
    site = rules.site

    def pid(ref: str) -> str:
        return ref if ref.startswith(site + "/") else f"{site}/{ref.replace('.', '/', 1)}"

    def key(ref: str) -> str:
        if ref.startswith(site + "/"):
            return ref
        point, _, alarm = ref.partition("/")
        return f"{pid(point)}/{alarm}" if alarm else pid(point)

    points = rules.scope.points
    alarms = {spec.info.key for spec in rules.alarms} | set(rules.meta)
    linkage = {spec.id for spec in rules.linkage}
    out = [f"results: unknown point {ref!r}" for ref in scenario.results if pid(ref) not in points]
    for i, step in enumerate(scenario.steps):
        where = f"steps[{i}]"
        for field, refs in (
            ("set", step.set or {}),
            ("bad", step.bad or []),
            ("override", step.override or {}),
        ):
            out.extend(f"{where}.{field}: unknown point {ref!r}" for ref in refs if pid(ref) not in points)
        if step.release and pid(step.release) not in points:
            out.append(f"{where}.release: unknown point {step.release!r}")
        for field in ("ack", "reset", "shelve", "unshelve"):
            ref = getattr(step, field)
            if ref and key(ref) not in alarms:
                out.append(f"{where}.{field}: unknown alarm {ref!r} (write device.point/alarm_id)")
        for field in ("confirm", "cancel"):
            ref = getattr(step, field)
            if ref and ref not in linkage:
                out.append(f"{where}.{field}: unknown linkage rule {ref!r}")
    return out
