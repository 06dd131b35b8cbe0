"""Renew the gateway's identity before its certificate runs out, without stopping the uplink.

:class:`Renewer` runs in the daemon beside the uplink (``edge.uplink.wiring.enter_uplink``). Once
the identity's ``renew_after`` has passed it makes new keys, asks central's
``/api/v1/enroll/renew`` with a request signed by the *current* signing key, writes the answer as
the next version of the folder (``edge.identity.folder.write_renewal``) and hands it to the
running uplink (``switch``); only then is the previous version removed.

When central cannot be reached the attempt is retried with capped, jittered exponential backoff;
a refusal (``revoked``, ``bad_signature``...) is logged as an error, shown in :meth:`status` and
tried again much later (an administrator may lift a revocation). The certificate keeps working
until ``not_after`` meanwhile: ``renew_before_days`` at central is the room for outages.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from edge.identity.client import CentralError, Refused, post_async
from edge.identity.folder import Identity, IdentityError, prune, write_renewal
from edge.identity.material import new_keys
from edge.identity.protocol import RENEW_PATH, GrantError, parse_grant, renew_request

__all__ = ["RenewalPolicy", "Renewer", "renewing"]

_LOG = structlog.get_logger(__name__)

Switch = Callable[[Identity], Awaitable[None]]
Post = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class RenewalPolicy:
    check_every_s: float = 3600.0  # the longest sleep between two looks at renew_after
    retry_initial_s: float = 60.0
    retry_max_s: float = 3600.0
    refused_retry_s: float = 6 * 3600.0


class Renewer:
    def __init__(
        self,
        identity: Identity,
        *,
        switch: Switch,
        policy: RenewalPolicy | None = None,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        post: Post = post_async,
    ) -> None:
        self._identity = identity
        self._switch = switch
        self._policy = policy or RenewalPolicy()
        self._wall = wall
        self._rng = rng or random.Random()
        self._post = post
        self._wakeup = asyncio.Event()
        self._failures = 0
        self._retry_at: float | None = None
        self._renewing = False
        self._last_error: str | None = None
        self._refused: str | None = None
        self._last_renewed_at: float | None = None
        self.renewals = 0

    @property
    def identity(self) -> Identity:
        return self._identity

    def status(self) -> dict[str, Any]:
        ident, now = self._identity, self._wall()
        if now >= ident.not_after:
            state = "expired"
        elif self._renewing:
            state = "renewing"
        elif self._refused is not None:
            state = "refused"
        elif self._failures:
            state = "retrying"
        elif now >= ident.renew_after:
            state = "due"
        else:
            state = "ok"
        return {
            "state": state,
            "gateway_id": ident.gateway_id,
            "version": ident.version,
            "kid": ident.kid,
            "not_after": ident.not_after,
            "renew_after": ident.renew_after,
            "next_attempt_at": self._retry_at if self._retry_at is not None else ident.renew_after,
            "failures": self._failures,
            "last_error": self._last_error,
            "refused": self._refused,
            "last_renewed_at": self._last_renewed_at,
        }

    def renew_soon(self) -> None:
        """Renew now rather than at ``renew_after`` (an operator's request, tests)."""
        self._retry_at = self._wall()
        self._wakeup.set()

    async def renew_once(self) -> Identity:
        """One renewal, start to finish; raises ``CentralError`` (``Refused``), ``GrantError``,
        ``IdentityError`` or ``OSError`` and then changes nothing."""
        current = self._identity
        keys = await asyncio.to_thread(new_keys)
        body = renew_request(
            gateway_id=current.gateway_id,
            current_key=current.signing_key(),
            kid=current.kid,
            at=self._wall(),
            keys=keys,
        )
        answer = await self._post(current.central_url, RENEW_PATH, body, ca_file=current.api_ca)
        grant = parse_grant(answer, keys)
        renewed = await asyncio.to_thread(write_renewal, current, grant, keys, now=self._wall())
        self._identity = renewed
        # identity.json names the new version from here on: a restart would use it too.
        try:
            await self._switch(renewed)
        except (OSError, ValueError, RuntimeError) as exc:
            # Renewed at central and on disk, but the running uplink kept the old identity (still
            # valid until not_after, its key accepted for the grace period): the next start
            # takes the new one. The previous version stays until then.
            self._last_error = f"renewed, but the running uplink did not switch: {exc}"[:300]
            _LOG.error("identity.switch_failed", error=str(exc), version=renewed.version)
            return renewed
        removed = await asyncio.to_thread(prune, renewed)
        self.renewals += 1
        self._last_renewed_at = self._wall()
        self._last_error = None
        _LOG.info(
            "identity.renewed",
            gateway=renewed.gateway_id,
            version=renewed.version,
            kid=renewed.kid,
            previous_kid=current.kid,
            not_after=renewed.not_after,
            removed=removed,
        )
        return renewed

    async def run(self) -> None:
        while True:
            now = self._wall()
            due_at = self._retry_at if self._retry_at is not None else self._identity.renew_after
            if now < due_at:
                await self._sleep(min(due_at - now, self._policy.check_every_s))
                continue
            await self._attempt()

    async def _attempt(self) -> None:
        policy = self._policy
        self._renewing = True
        try:
            await self.renew_once()
        except Refused as exc:
            self._refused, self._last_error = exc.reason, str(exc)
            self._retry_at = self._wall() + policy.refused_retry_s
            _LOG.error("identity.renewal_refused", reason=exc.reason, retry_in_s=policy.refused_retry_s)
        except (CentralError, GrantError, IdentityError, OSError) as exc:
            self._failures += 1
            self._last_error = str(exc)[:300]
            ceiling = min(policy.retry_max_s, policy.retry_initial_s * 2 ** min(self._failures - 1, 30))
            delay = ceiling * (0.5 + self._rng.random() / 2)
            self._retry_at = self._wall() + delay
            _LOG.warning("identity.renewal_failed", error=self._last_error, retry_in_s=round(delay, 1))
        else:
            self._failures, self._retry_at, self._refused = 0, None, None
        finally:
            self._renewing = False

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=max(0.0, seconds))
        self._wakeup.clear()


@contextlib.asynccontextmanager
async def renewing(renewer: Renewer) -> AsyncIterator[Renewer]:
    """Run ``renewer`` for as long as the block (the uplink's exit stack) lasts."""
    task = asyncio.create_task(renewer.run(), name="identity-renewal")
    try:
        yield renewer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
