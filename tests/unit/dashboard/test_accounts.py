"""The account store on its own: hashes, sessions and the bounded audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.dashboard.accounts import AccountStore, hash_password, verify_password


def test_scrypt_hashes_are_salted_and_verify() -> None:
    first, second = hash_password("secret-words"), hash_password("secret-words")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("secret-words", first) and not verify_password("secret-word", first)
    assert not verify_password("secret-words", "garbage")


async def test_sessions_and_audit_are_purged(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "a.db", default_timeout_min=1)
    try:
        await store.create_user("u1", "password-1", role="operator", now=0.0)
        result = await store.login("u1", "password-1", now=0.0, ip="10.1.1.1")
        assert result.status == "ok" and result.token is not None
        assert store.purge_sessions(now=30.0) == 0
        assert store.purge_sessions(now=61.0) == 1
        assert store.session(result.token, now=61.0) == "login"
        store.audit(now=10.0, user="u1", ip="10.1.1.1", action="ack", target="k")
        store.audit(now=100.0, user="u1", ip="10.1.1.1", action="ack", target="k2")
        assert store.purge_audit(before=50.0) == 1
        assert [r["target"] for r in store.audit_rows()] == ["k2"]
        with pytest.raises(KeyError):
            await store.create_user("u1", "password-2", role="viewer", now=1.0)
        with pytest.raises(ValueError, match="role"):
            await store.create_user("u2", "password-2", role="root", now=1.0)
    finally:
        store.close()
