"""`python -m bench NAME --flags NAME2`: each bench gets the flags written after it."""

from __future__ import annotations

from bench.__main__ import ALL, plan


def test_flags_and_their_values_go_to_the_bench_before_them() -> None:
    assert plan(["e2e_scale", "--counts", "500,1000", "--all", "sync"]) == [
        ("e2e_scale", ["--counts", "500,1000", "--all"]),
        ("sync", []),
    ]


def test_no_names_runs_every_bench_without_flags() -> None:
    assert plan([]) == [(name, []) for name in ALL]


def test_an_unknown_name_is_kept_for_the_runner_to_report() -> None:
    assert plan(["no_such_bench"]) == [("no_such_bench", [])]
