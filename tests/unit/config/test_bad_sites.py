"""Every malformed site under tests/fixtures/sites/bad is rejected at the line (and column) its
header promises, and nothing else is reported.

A fixture's header lists what it expects, one line per problem::

    # expect: 14:4 bad indentation                        (site file, line 14, column 4)
    # expect: 14 bad indentation                          (line only)
    # expect: profiles/x.yaml:9:14 greater than or equal  (a problem in another file)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.errors import ConfigError
from edge.config.loader import load_site

BAD = Path(__file__).resolve().parents[2] / "fixtures" / "sites" / "bad"
_EXPECT = re.compile(
    r"^# expect: (?:(?P<file>[^\s:]+\.ya?ml):)?(?P<line>\d+)(?::(?P<col>\d+))? (?P<text>.+)$"
)


@dataclass(frozen=True)
class Expected:
    file: Path
    line: int
    column: int | None
    text: str


def _expectations(path: Path) -> list[Expected]:
    found = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        match = _EXPECT.match(raw)
        if match:
            file = path.parent / match["file"] if match["file"] else path
            column = int(match["col"]) if match["col"] else None
            found.append(Expected(file, int(match["line"]), column, match["text"]))
    return found


FIXTURES = sorted(BAD.glob("*.yaml"))


def test_there_are_enough_distinct_fixtures() -> None:
    assert len(FIXTURES) >= 30
    assert all(_expectations(f) for f in FIXTURES), "every bad fixture names what it expects"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_bad_site_is_rejected_at_the_right_place(fixture: Path) -> None:
    expected = _expectations(fixture)
    with pytest.raises(ConfigError) as caught:
        load_site(fixture)
    problems = caught.value.problems
    reported = "\n".join(str(p) for p in problems)
    unmatched = list(problems)
    for want in expected:
        hits = [
            p
            for p in unmatched
            if Path(p.file).resolve() == want.file.resolve()
            and p.line == want.line
            and (want.column is None or p.column == want.column)
            and want.text in p.message
        ]
        assert hits, f"expected {want.file.name}:{want.line}:{want.column} {want.text!r}; got\n{reported}"
        unmatched.remove(hits[0])
    assert not unmatched, "unexpected problems:\n" + "\n".join(str(p) for p in unmatched)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_every_problem_names_a_real_position(fixture: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(fixture)
    for problem in caught.value.problems:
        lines = Path(problem.file).read_text(encoding="utf-8").splitlines() or [""]
        assert 1 <= problem.line <= len(lines), str(problem)
        assert 1 <= problem.column <= len(lines[problem.line - 1]) + 1, str(problem)
        assert problem.path and problem.message


@pytest.mark.parametrize(
    "fixture", ["enum-zh-without-enum", "enum-zh-unknown-code", "enum-zh-in-local-profile"]
)
def test_enum_zh_mistakes_name_the_field(fixture: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(BAD / f"{fixture}.yaml")
    [problem] = caught.value.problems
    assert problem.path.endswith(".enum_zh"), str(problem)
    assert "enum_zh" in problem.message
