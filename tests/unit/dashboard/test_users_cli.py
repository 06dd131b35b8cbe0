"""`gatehouse users reset-password`: the way back in for a locked-out administrator."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest

from edge.cli import main
from edge.dashboard.accounts import AccountStore
from tests.unit.dashboard.fakes import write_site


def _locked_admin(tmp_path: Path) -> tuple[Path, Path]:
    site = write_site(tmp_path)
    db = tmp_path / "data" / "dashboard.db"
    store = AccountStore(db)

    now = time.time()  # the command judges the lock by the real clock

    async def lock() -> None:
        await store.create_user("admin", "first-password", role="admin", now=now)
        for _ in range(3):
            await store.login("admin", "wrong-guess", now=now, ip="10.0.0.9")

    asyncio.run(lock())
    store.close()
    return site, db


def test_reset_password_unlocks_and_is_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site, db = _locked_admin(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("brand-new-password\n"))
    assert main(["users", "reset-password", "--config", str(site), "admin", "--password-stdin"]) == 0
    assert "unlocked" in capsys.readouterr().out
    store = AccountStore(db)
    try:
        result = asyncio.run(store.login("admin", "brand-new-password", now=time.time(), ip=None))
        assert result.status == "ok"
        [row] = store.audit_rows(user="shell")
        assert row["action"] == "user_update" and row["target"] == "admin"
    finally:
        store.close()


def test_short_password_and_unknown_user_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site, _ = _locked_admin(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "reset-password", "--config", str(site), "admin", "--password-stdin"]) == 1
    assert main(["users", "unlock", "--config", str(site), "nobody"]) == 1
    assert "no account 'nobody'" in capsys.readouterr().err
    assert main(["users", "list", "--config", str(site)]) == 0
    assert "admin\tadmin\t\tlocked from 10.0.0.9\n" in capsys.readouterr().out
    assert main(["users", "unlock", "--config", str(site), "admin", "--from", "10.0.0.7"]) == 0
    assert "(0 address(es)" in capsys.readouterr().out  # not locked from there: still locked
    main(["users", "list", "--config", str(site)])
    assert "locked from 10.0.0.9" in capsys.readouterr().out
    assert main(["users", "unlock", "--config", str(site), "admin"]) == 0
    capsys.readouterr()
    main(["users", "list", "--config", str(site)])
    assert "admin\tadmin\t\t\n" in capsys.readouterr().out
