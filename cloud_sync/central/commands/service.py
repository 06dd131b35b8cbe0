"""Issue commands to gateways and tell what became of them.

Issuing: the body is checked with the gateway's own codec first (``encode_command`` refuses what
a gateway would refuse, so a bad request is a 400 here, not a silent refusal there), then
numbered and recorded in the ledger, signed with central's downlink key, and published.

Reading: a command's outcome is the gateway's ``command.result`` event, which central's storage
already holds (it travels on the event lane like an alarm). Before a read, the results of the
gateways concerned are looked up — only for commands still open, only since the oldest of them
(less a margin for the gateway's clock) and through the events' (gateway, kind, ts) index — and
copied onto the ledger rows, so a finished command is never looked up again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import structlog

from cloud_sync.central.commands.ledger import CommandLedger, CommandRow
from cloud_sync.central.commands.publisher import CommandPublisher, NotSent
from cloud_sync.central.commands.states import outcome_of
from cloud_sync.central.storage.interface import CentralStorage
from cloud_sync.commands import RESULT_KIND, Command, encode_command
from cloud_sync.downlink import DownlinkSigner
from cloud_sync.errors import EnvelopeError

__all__ = ["CLOCK_MARGIN_S", "RESULT_HORIZON_S", "CommandService"]

_LOG = structlog.get_logger(__name__)

# A gateway stamps its result with its own clock; one running this far behind central's still
# has its results found.
CLOCK_MARGIN_S: Final = 3600.0
# Results are looked for this long after a command was issued (a gateway offline for longer
# than a week has its late results ignored; the command stays "expired").
RESULT_HORIZON_S: Final = 7 * 86_400.0
_EVENT_PAGE: Final = 1000


class CommandService:
    def __init__(
        self,
        ledger: CommandLedger,
        store: CentralStorage,
        signer: DownlinkSigner,
        publisher: CommandPublisher | None,
        *,
        e2e_key_of: Callable[[str], Any] = lambda _gw: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self._store = store
        self._signer = signer
        self.publisher = publisher
        # The gateway's X25519 public key when its commands are to be encrypted (issue 15 item 1):
        # the lead wires it from the trust registry; None sends the body signed but in clear.
        self._e2e_key_of = e2e_key_of
        self._clock = clock

    def _sign(self, gateway_id: str, command: Command) -> bytes:
        key = self._e2e_key_of(gateway_id)
        if key is None:
            return self._signer.sign_command(gateway_id, command)
        sign: Callable[..., bytes] = self._signer.sign_command
        return sign(gateway_id, command, encrypt_to=key)

    def config_versions(self, gateways: Iterable[str]) -> dict[str, str | None]:
        """What each gateway reports running now (its state message), for before/after a push."""
        ids = frozenset(gateways)
        out: dict[str, str | None] = dict.fromkeys(ids)
        if ids:
            for row in self._store.gateway_rows(ids):
                version = row["versions"].get("config_version")
                out[row["gateway_id"]] = None if version is None else str(version)
        return out

    async def issue(
        self, gateway_id: str, action: str, args: Mapping[str, Any], *, by: str, source: str, ttl_s: float
    ) -> CommandRow:
        """Record, sign and publish one command; ``EnvelopeError`` when the body is refused."""
        now = self._clock()
        draft = Command(uuid.uuid4().hex, 1, now, now + ttl_s, action, dict(args), by[:512], source[:512])
        try:
            encode_command(draft)  # raises before anything is recorded or numbered
        except (ValueError, TypeError, OverflowError) as exc:
            # msgpack's own refusals (an integer beyond 64 bits, nesting too deep) are bad arguments too
            raise EnvelopeError(f"arguments cannot be encoded: {exc}", reason="malformed") from exc
        before = (await asyncio.to_thread(self.config_versions, [gateway_id]))[gateway_id]
        command = await asyncio.to_thread(self.ledger.issue, gateway_id, draft, config_before=before)
        payload = self._sign(gateway_id, command)
        if self.publisher is None:
            reason = "central has no broker: section to send commands through"
            await asyncio.to_thread(self.ledger.mark_unsent, command.cid, reason)
        else:
            try:
                await self.publisher.publish(gateway_id, payload)
            except NotSent as exc:
                _LOG.warning("command not sent", gateway=gateway_id, cid=command.cid, error=str(exc))
                await asyncio.to_thread(self.ledger.mark_unsent, command.cid, str(exc))
        _LOG.info(
            "command issued",
            gateway=gateway_id,
            cid=command.cid,
            cseq=command.cseq,
            action=action,
            by=by,
            source=source,
        )
        row = await asyncio.to_thread(self.ledger.get, command.cid)
        assert row is not None
        return row

    def refresh(self, gateways: Iterable[str] | None = None) -> None:
        """Match stored results to ``gateways``' open commands (None: every gateway with one)."""
        now = self._clock()
        horizon = now - RESULT_HORIZON_S
        for gw in self.ledger.gateways_open(horizon) if gateways is None else gateways:
            since = self.ledger.open_since(gw, horizon)
            if since is None:
                continue
            after: tuple[float, int] | None = None
            while True:
                rows = self._store.events(
                    gateways=[gw],
                    kind=RESULT_KIND,
                    start=since - CLOCK_MARGIN_S,
                    after=after,
                    limit=_EVENT_PAGE,
                )
                outcomes = [o for r in rows if (o := outcome_of(r["data"], float(r["ts"]))) is not None]
                matched, stray = self.ledger.record(gw, outcomes, now=now)
                if stray:
                    _LOG.warning("command results for commands central never issued", gateway=gw, count=stray)
                if len(rows) < _EVENT_PAGE:
                    break
                after = (float(rows[-1]["ts"]), int(rows[-1]["id"]))

    def get(self, cid: str) -> CommandRow | None:
        row = self.ledger.get(cid)
        if row is not None and row.status is None:
            self.refresh([row.gateway])
            row = self.ledger.get(cid)
        return row

    def now(self) -> float:
        return self._clock()

    async def close(self) -> None:
        if self.publisher is not None:
            await self.publisher.close()
        self.ledger.close()
