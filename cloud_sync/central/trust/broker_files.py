"""The text of the broker files central owns (``trust.broker_access``). Pure.

The ACL has no ``%u`` patterns: each gateway gets its own ``user`` block, so deleting a block is
enough to cut a gateway off even when its certificate is still trusted (Mosquitto 2.0.11 does
not reload the CRL on SIGHUP; docs/trust.md). Users without a block are denied everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from cloud_sync.certs import CENTRAL_USER

__all__ = ["render_acl", "render_passwords"]

_HEADER: Final = """\
# Written by Gatehouse central (trust: broker_access); edits here are overwritten.
# One block per gateway allowed on the broker; a gateway without a block is denied everything.
"""

# The same grants as config/mosquitto/acl gives the central user.
_CENTRAL_BLOCK: Final = f"""\
user {CENTRAL_USER}
topic read gh/v1/+/up/#
topic read gh/v1/+/state
topic write gh/v1/+/ack
topic write gh/v1/+/cmd
"""


def _gateway_block(gateway_id: str) -> str:
    return (
        f"user {gateway_id}\n"
        f"topic write gh/v1/{gateway_id}/up/#\n"
        f"topic write gh/v1/{gateway_id}/state\n"
        f"topic read gh/v1/{gateway_id}/ack\n"
        f"topic read gh/v1/{gateway_id}/cmd\n"
    )


def render_acl(gateway_ids: Iterable[str]) -> str:
    """The central block, then one block per allowed gateway (sorted, each once)."""
    blocks = [_HEADER, _CENTRAL_BLOCK]
    blocks += [_gateway_block(gw) for gw in sorted(set(gateway_ids)) if gw != CENTRAL_USER]
    return "\n".join(blocks)


def render_passwords(existing: str, *, managed: Iterable[str], lines: Mapping[str, str]) -> str:
    """The password file: ``existing`` lines of users central does not manage (``central``,
    gateways enrolled by hand) kept as they are, every ``managed`` user's line dropped, then the
    ``lines`` (user → ``$7$`` line) of the gateways that may log in."""
    dropped = set(managed) | set(lines)
    kept = [
        line
        for line in existing.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and line.split(":", 1)[0] not in dropped
    ]
    out = kept + [lines[user] for user in sorted(lines)]
    return "".join(line + "\n" for line in out)
