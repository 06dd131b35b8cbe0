"""From a loaded site to the rules package's neutral input, and back to file positions.

The rules package never imports ``edge.config``: this module builds its ``PointRules`` (point
id, zone, the profile's alarms merged with the device's patch) and the map from point ids to
``(device, point)`` that the runtime needs to send linkage writes through the coordinators.
``gatehouse check``, the daemon and ``gatehouse rules test`` all compile through
``compile_site_rules``, so they agree on what a site's rules mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import structlog

from core.errors import ConfigProblem
from core.yaml_doc import Loc, YamlDocument, read_yaml
from edge.config.checks import Issue
from edge.config.site import Site
from edge.site_zones import zone_reference_issues
from rules import CompiledRules, PointRules, RuleProblem, RulesError, compile_rules

__all__ = [
    "compile_site_rules",
    "point_targets",
    "rule_config_problems",
    "rule_issues",
    "site_point_rules",
]

_LOG = structlog.get_logger(__name__)

_INDEX = re.compile(r"\[(\d+)\]")


def site_point_rules(site: Site) -> list[PointRules]:
    """Every point of every enabled device, with its zone and its alarms."""
    out: list[PointRules] = []
    for device in site.devices:
        if not device.config.enabled:
            continue
        for point in device.points:
            zone = point.zone or device.config.zone
            out.append(PointRules(site.point_id(device.id, point.id), zone, tuple(point.alarms)))
    return out


def compile_site_rules(site: Site) -> CompiledRules:
    """Compile profile alarms plus the site's ``rules:`` section; raises ``rules.RulesError``."""
    return compile_rules(site.id, site_point_rules(site), site.config.rules)


def point_targets(site: Site) -> dict[str, tuple[str, str]]:
    """Point id → (device id, point key), for writes through the device's coordinator."""
    return {
        site.point_id(device.id, point.id): (device.id, point.id)
        for device in site.devices
        for point in device.points
    }


def _loc(path: str) -> Loc:
    """``rules.linkage[0].steps[2].write`` → ("rules", "linkage", 0, "steps", 2, "write")."""
    loc: list[str | int] = []
    for part in path.split("."):
        name = _INDEX.split(part)
        # split leaves the name first, then alternating index / empty text
        if name[0]:
            loc.append(name[0])
        loc.extend(int(x) for x in name[1::2])
    return tuple(loc)


def rule_issues(site: Site, problems: list[RuleProblem]) -> list[tuple[Issue, RuleProblem, str | None]]:
    """Where each problem lives: an issue in the site file, or in the profile (third item: its id).

    Problems in the ``rules:`` section keep their path. A problem in a point's alarm
    (``SITE/dev/point.alarms[1].setpoint``) is placed on the device's point patch when the site
    file gives that point its own ``alarms:``, and otherwise in the profile that defines it.
    """
    raw_devices = site.config.devices
    out: list[tuple[Issue, RuleProblem, str | None]] = []
    for problem in problems:
        if problem.path.startswith("rules"):
            out.append((Issue(_loc(problem.path), problem.message), problem, None))
            continue
        point_part, _, rest = problem.path.partition(".alarms")
        parts = point_part.split("/")
        if len(parts) != 3:
            out.append((Issue(("rules",), f"{problem.path}: {problem.message}"), problem, None))
            continue
        _, device_id, point_key = parts
        tail = _loc("alarms" + rest) if rest else ("alarms",)
        located = False
        for index, device in enumerate(raw_devices):
            if device.id != device_id:
                continue
            for j, patch in enumerate(device.points):
                if patch.id == point_key and patch.alarms is not None:
                    out.append(
                        (Issue(("devices", index, "points", j, *tail), problem.message), problem, None)
                    )
                    located = True
            if not located and device.profile is not None:
                profile = site.profiles.get(device.profile)
                points = profile.points if profile is not None else ()
                k = next((i for i, p in enumerate(points) if p.id == point_key), None)
                if k is not None:
                    out.append((Issue(("points", k, *tail), problem.message), problem, device.profile))
                    located = True
            if not located:
                out.append(
                    (Issue(("devices", index), f"point {point_key}: {problem.message}"), problem, None)
                )
                located = True
            break
        if not located:
            out.append((Issue(("rules",), f"{problem.path}: {problem.message}"), problem, None))
    return out


def priority_step_issues(site: Site) -> list[Issue]:
    """A linkage step's ``priority`` needs a point with a priority array (a BACnet commandable
    object); on any other point it would fail at the worst moment, during a fire."""
    rules = site.config.rules or {}
    raw = rules.get("linkage") if isinstance(rules, dict) else None
    if not isinstance(raw, list):
        return []
    points: dict[tuple[str, str], object] = {}
    for device in site.devices:
        for point in device.points:
            points[(device.id, point.id)] = point
    out: list[Issue] = []
    for r, rule in enumerate(raw):
        if not isinstance(rule, dict):
            continue
        for seq in ("steps", "restore"):
            steps = rule.get(seq)
            for s, step in enumerate(steps if isinstance(steps, list) else []):
                if not isinstance(step, dict) or step.get("priority") is None:
                    continue
                ref = str(step.get("write") or "")
                parts = ref.split("/")[-2:] if "/" in ref else ref.split(".", 1)
                target = points.get((parts[0], parts[1])) if len(parts) == 2 else None
                own = getattr(target, "priority", None)
                if target is not None and (isinstance(own, bool) or not isinstance(own, int)):
                    message = f"'priority' needs a point with a priority array (BACnet); {ref} has none"
                    out.append(Issue(("rules", "linkage", r, seq, s, "priority"), message))
    return out


def rule_config_problems(
    site: Site, doc: YamlDocument, find_profile: Callable[[str], Path | None]
) -> list[ConfigProblem]:
    """Compile the site's rules; every mistake as ``file:line:col: path: message``.

    Inside an expression the position is the expression's own line and column added to the
    YAML scalar's position (one more column for a quoted scalar), so an installer is sent to
    the exact character.
    """
    zone_problems = [doc.problem(issue) for issue in zone_reference_issues(site)]
    zone_problems += [doc.problem(issue) for issue in priority_step_issues(site)]
    try:
        compile_site_rules(site)
    except RulesError as exc:
        problems = exc.problems
    else:
        return zone_problems
    profile_docs: dict[str, YamlDocument | None] = {}
    out: list[ConfigProblem] = []
    for issue, problem, profile_id in rule_issues(site, problems):
        target: YamlDocument | None = doc
        if profile_id is not None:
            if profile_id not in profile_docs:
                path = find_profile(profile_id)
                profile_docs[profile_id] = read_yaml(path) if path is not None else None
            target = profile_docs[profile_id]
        if target is None:
            out.append(ConfigProblem(doc.file, 1, 1, problem.path, problem.message))
            continue
        line, col = target.position(issue.loc, at_key=issue.at_key)
        line, col, block = _expression_start(target.text, line, col)
        if block and problem.line > 0:
            # a block scalar (``|``): every line of the expression is indented alike
            located = ConfigProblem(target.file, line + problem.line - 1, col + problem.col - 1, "", "")
        else:
            located = problem.to_config_problem(target.file, line, col)
        out.append(
            ConfigProblem(located.file, located.line, located.column, _format_loc(issue.loc), issue.message)
        )
    out.extend(zone_problems)
    return sorted(out, key=lambda p: (p.file != doc.file, p.file, p.line, p.column))


def _expression_start(text: str, line: int, col: int) -> tuple[int, int, bool]:
    """Where a scalar's text begins: after an opening quote; on the next line for ``|``/``>``
    (third item True: a block scalar, whose lines all share that indentation)."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return line, col, False
    row = lines[line - 1]
    ch = row[col - 1] if 0 < col <= len(row) else ""
    if ch in ("'", '"'):
        return line, col + 1, False
    if ch in ("|", ">") and line < len(lines):
        following = lines[line]
        return line + 1, len(following) - len(following.lstrip(" ")) + 1, True
    return line, col, False


def _format_loc(loc: Loc) -> str:
    text = ""
    for step in loc:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "(top level)"
