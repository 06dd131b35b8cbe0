"""Alarm and linkage rules: pure, deterministic code driven by samples and an injected time.

Build once with ``compile_rules(site, points, rules_section)`` (every mistake reported with its
path and, inside expressions, line:col), then run a ``RulesEngine``: ``feed(sample)``,
``tick(now)``, operator actions (``ack``, ``reset``, ``shelve``, ``confirm``, ``override``…),
``command_result(...)``; collect alarm/linkage events and write commands with ``drain()``.
``rules.snapshot`` saves and restores the whole state; ``rules.replay`` runs scenarios.
See ``docs/rules.md``.
"""

from rules.compiled import CompiledRules, PointRules, RuleProblem, RulesError, compile_rules
from rules.definitions import RulesConfig
from rules.evaluator import Output, RulesEngine
from rules.linkage import Command, CommandResult
from rules.snapshot import restore, snapshot

__all__ = [
    "Command",
    "CommandResult",
    "CompiledRules",
    "Output",
    "PointRules",
    "RuleProblem",
    "RulesConfig",
    "RulesEngine",
    "RulesError",
    "compile_rules",
    "restore",
    "snapshot",
]
