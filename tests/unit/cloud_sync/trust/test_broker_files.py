"""The ACL and password file central writes for the broker (pure)."""

from __future__ import annotations

from cloud_sync.central.trust.broker_files import render_acl, render_passwords
from cloud_sync.certs import check_password, password_line


def blocks(acl: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    user = ""
    for line in acl.splitlines():
        if line.startswith("user "):
            user = line.split()[1]
            out[user] = []
        elif line.startswith("topic "):
            out[user].append(line)
    return out


def test_acl_has_central_and_one_explicit_block_per_gateway() -> None:
    acl = render_acl(["gw-b", "gw-a", "gw-a", "central"])
    assert "%u" not in acl and "pattern" not in acl
    found = blocks(acl)
    assert list(found) == ["central", "gw-a", "gw-b"]
    assert found["central"] == [
        "topic read gh/v1/+/up/#",
        "topic read gh/v1/+/state",
        "topic write gh/v1/+/ack",
        "topic write gh/v1/+/cmd",
    ]
    assert found["gw-a"] == [
        "topic write gh/v1/gw-a/up/#",
        "topic write gh/v1/gw-a/state",
        "topic read gh/v1/gw-a/ack",
        "topic read gh/v1/gw-a/cmd",
    ]


def test_acl_without_gateways_leaves_only_central() -> None:
    assert list(blocks(render_acl([]))) == ["central"]


def test_password_file_keeps_foreign_lines_and_replaces_managed_ones() -> None:
    central = password_line("central", "c-secret")
    by_hand = password_line("gw-hand", "h-secret")
    stale = password_line("gw-old", "old")
    existing = f"{central}\n{by_hand}\n{stale}\n\n"
    fresh = password_line("gw-new", "n-secret")
    text = render_passwords(existing, managed=["gw-old", "gw-new"], lines={"gw-new": fresh})
    lines = text.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["central", "gw-hand", "gw-new"]
    assert check_password(lines[2], "n-secret") and check_password(lines[0], "c-secret")
    assert text.endswith("\n")


def test_password_file_of_only_revoked_gateways_is_central_alone() -> None:
    central = password_line("central", "c")
    text = render_passwords(f"{central}\n{password_line('gw-r', 'r')}\n", managed=["gw-r"], lines={})
    assert text == central + "\n"
