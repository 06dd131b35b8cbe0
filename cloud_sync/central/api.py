"""Central's REST API (FastAPI): read what the gateways sent, audit rejections, ingest over HTTPS.

Every route under ``/api/v1`` needs ``Authorization: Bearer <token>``; tokens are kept as SHA-256
digests and compared in constant time, and each carries scopes: ``read`` for the GET routes,
``ingest`` for the HTTPS POST (optionally limited to some gateway ids), ``admin`` for the audit.
``/openapi.json`` and ``/docs`` are open so that a client developer can read the contract.

Request bodies are limited before anything reads them (:class:`BodyLimit`): 8 MiB on the ingest
route (the protocol's payload limit), ``api.max_body_bytes`` elsewhere; a larger declared
``Content-Length`` is answered 413 at once, unauthenticated or not, and a streamed body is cut
off with 413 as soon as it passes the limit. Times in queries must be finite (``nan``/``inf``
are 422). The msgpack ack of an HTTPS ingest is signed like an MQTT ack (``cloud_sync.downlink``).

Handlers that touch SQLite are plain ``def`` (FastAPI runs them in its thread pool) or hand the
work to a thread, so the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Final

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_sync.central.api_models import (
    AlarmOut,
    AlarmStats,
    Audit,
    EstateInfo,
    EventOut,
    FleetEntry,
    GatewayInfo,
    History,
    HistoryBucket,
    HistorySample,
    LanePosition,
    PointValue,
    RejectedOut,
    StatsBucket,
)
from cloud_sync.central.config import ApiConfig, ApiToken
from cloud_sync.central.ingest import Ingestor
from cloud_sync.central.principal import Principal, match_token, token_digests, token_principal
from cloud_sync.central.storage.alarms import ALARM_STATES
from cloud_sync.central.storage.common import ALARM_STATS_BY
from cloud_sync.central.storage.interface import CentralStorage
from cloud_sync.commands import MAX_SITE_BYTES
from cloud_sync.downlink import DownlinkSigner
from cloud_sync.envelope import MAX_PAYLOAD_BYTES
from cloud_sync.ports import Lane

__all__ = ["MSGPACK", "BodyLimit", "create_api"]

_LOG = structlog.get_logger(__name__)

MSGPACK = "application/msgpack"
_MAX_BUCKETS = 10_000
_REJECT_STATUS = {
    "too_large": 413,
    "unknown_gateway": 403,
    "unknown_key": 403,
    "revoked": 403,
    "bad_signature": 403,
    "gateway_mismatch": 403,
    "lane_mismatch": 400,
    "bad_route": 404,
}


# Module level: with postponed annotations FastAPI resolves ``Depends(_BEARER)`` from globals.
_BEARER = HTTPBearer(auto_error=False)
_INGEST_PREFIX: Final = "/api/v1/ingest/"
_TIME = "seconds since the epoch, finite"


_CONFIG_PUSH = re.compile(r"/api/v1/gateways/[^/]+/config")
_CONFIG_PUSH_MAX_BYTES = 3 * MAX_SITE_BYTES  # JSON escaping can grow the YAML text


class BodyLimit:
    """ASGI middleware: refuse request bodies over the route's limit with 413, before parsing."""

    def __init__(self, app: ASGIApp, *, ingest_max_bytes: int, other_max_bytes: int) -> None:
        self.app = app
        self.ingest_max_bytes = ingest_max_bytes
        self.other_max_bytes = other_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path.startswith(_INGEST_PREFIX):
            limit = self.ingest_max_bytes
        elif _CONFIG_PUSH.fullmatch(path):
            # A whole site file (up to the command codec's 1 MiB) inside a JSON string.
            limit = max(self.other_max_bytes, _CONFIG_PUSH_MAX_BYTES)
        else:
            limit = self.other_max_bytes
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            status = 413 if declared.isdigit() else 400
            await _reply(send, status, f"request body over {limit} bytes" if status == 413 else "bad length")
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the handler that reads the body: FastAPI answers 413.
                    raise HTTPException(413, f"request body over {limit} bytes")
            return message

        await self.app(scope, limited, send)


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_ACTIVE_STATES: Final = ("active_unacked", "active_acked")
_KEEPALIVE_S: Final = 15.0
_STREAM_POLL_S: Final = 0.5
_CSV_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """A spreadsheet must not run a cell as a formula: texts starting with a trigger get a quote."""
    if isinstance(value, str) and value.lstrip("'").startswith(_CSV_TRIGGERS):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(422, "cursor is not one this API handed out") from exc


def _next_cursor(response: Response, rows: list[Any], limit: int, key: Callable[[Any], Any]) -> None:
    """Cut the extra row fetched to learn whether another page exists; name it in a header."""
    if len(rows) > limit:
        del rows[limit:]
        response.headers["X-Next-Cursor"] = _encode_cursor(key(rows[-1]))


def _float_cursor(cursor: Any, shape: type) -> Any:
    if cursor is None:
        return None
    ok = isinstance(cursor, shape)
    if ok and shape is list:
        ok = len(cursor) == 2 and isinstance(cursor[0], int | float) and isinstance(cursor[1], int)
    if not ok:
        raise HTTPException(422, "cursor is not one this API handed out")
    return cursor


def create_api(
    store: CentralStorage,
    ingestor: Ingestor,
    config: ApiConfig,
    *,
    signer: DownlinkSigner,
    enrolled: Callable[[str], bool] = lambda _gw: True,
    enrolled_ids: Callable[[], list[str]] = list,
    estate_of: Callable[[str], str] = lambda gw: gw,
    name_of: Callable[[str], str | None] = lambda _gw: None,
) -> FastAPI:
    tokens = token_digests(config.tokens)

    def require_principal(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> Principal:
        token = match_token(tokens, creds.credentials) if creds and creds.scheme.lower() == "bearer" else None
        if token is not None:
            request.state.api_token = token
            request.state.principal = token_principal(token)
            return request.state.principal  # type: ignore[no-any-return]
        # The console's session cookie (installed by cloud_sync.central.console), if any.
        session: Callable[[Request], Principal | None] | None = getattr(
            request.app.state, "session_principal", None
        )
        if session is not None:
            principal = session(request)
            if principal is not None:
                request.state.principal = principal
                return principal
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    def scope(name: str) -> Any:
        def check(request: Request) -> Principal:
            principal: Principal = request.state.principal
            if not principal.has(name):
                raise HTTPException(403, f"this token lacks the {name!r} scope")
            return principal

        return Depends(check)

    read, admin = [scope("read")], [scope("admin")]

    def ingest_token(request: Request) -> ApiToken:
        token: ApiToken | None = getattr(request.state, "api_token", None)
        if token is None or "ingest" not in token.scopes:
            raise HTTPException(403, "this token lacks the 'ingest' scope")
        return token

    ingest_scope = Depends(ingest_token)

    app = FastAPI(
        title="Gatehouse central",
        version="1",
        description="Read gateway state, the fleet and its estates, point values, history, events, "
        "alarms with their lifecycle (and a live stream of them) and the batch audit; ingest signed "
        "batches over HTTPS. Lists take `cursor` and `limit` and name the next page's cursor in the "
        "`X-Next-Cursor` response header (absent on the last page). Wire format: docs/protocol.md.",
    )
    app.add_middleware(BodyLimit, ingest_max_bytes=MAX_PAYLOAD_BYTES, other_max_bytes=config.max_body_bytes)
    # Router dependencies run before each route's own, so the scope checks see the principal.
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_principal)])

    def principal_of(request: Request) -> Principal:
        principal: Principal = request.state.principal
        return principal

    def visible(principal: Principal, estate: str | None = None) -> frozenset[str] | None:
        """Gateway ids the principal may see (within ``estate``); None: no limit at all."""
        if principal.estates is None and estate is None:
            return None
        allowed = principal.estates if principal.estates is not None else frozenset({estate or ""})
        if estate is not None:
            allowed = allowed & {estate}
        ids = {gw for gw in enrolled_ids() if estate_of(gw) in allowed}
        # A gateway seen but not enrolled is its own estate.
        ids |= {e for e in allowed if not enrolled(e)}
        return frozenset(ids)

    def narrow(ids: frozenset[str] | None, gateway: str | None) -> frozenset[str] | None:
        if gateway is None:
            return ids
        return frozenset({gateway}) if ids is None or gateway in ids else frozenset()

    def lane_positions(row: dict[str, Any]) -> dict[str, LanePosition]:
        reported = row["reported_seq"]
        out: dict[str, LanePosition] = {}
        for lane in Lane:
            info = row["lanes"][lane.value]
            top = reported.get(lane.value)
            out[lane.value] = LanePosition(
                acked=info["acked"],
                highest=info["highest"],
                missing=info["missing"],
                reported=top if type(top) is int else None,
            )
        return out

    def unseen(gw: str) -> dict[str, Any]:
        empty = {"acked": 0, "highest": 0, "missing": [], "last_batch_at": None, "last_sealed_at": None}
        return {
            "gateway_id": gw,
            "reported_seq": {},
            "state": "unknown",
            "first_seen": None,
            "last_seen": None,
            "state_ts": None,
            "backlog": {},
            "versions": {},
            "active_alarms": {},
            "lanes": {lane.value: dict(empty) for lane in Lane},
        }

    def all_rows(ids: frozenset[str] | None) -> list[dict[str, Any]]:
        rows = {r["gateway_id"]: r for r in store.gateway_rows(ids)}
        for gw in enrolled_ids():
            if ids is None or gw in ids:
                rows.setdefault(gw, unseen(gw))
        return [rows[gw] for gw in sorted(rows)]

    def gateway_info(row: dict[str, Any]) -> GatewayInfo:
        gw = row["gateway_id"]
        return GatewayInfo(
            gateway_id=gw,
            enrolled=enrolled(gw),
            online=row["state"] == "online",
            state=row["state"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            state_ts=row["state_ts"],
            backlog=row["backlog"],
            lanes=lane_positions(row),
            estate=estate_of(gw),
            name=name_of(gw) or row["versions"].get("site_name"),
        )

    def page_of_gateways(rows: list[dict[str, Any]], cursor: str | None, limit: int) -> list[dict[str, Any]]:
        after = _decode_cursor(cursor)
        if after is not None and not isinstance(after, str):
            raise HTTPException(422, "cursor is not one this API handed out")
        return [r for r in rows if after is None or r["gateway_id"] > after][: limit + 1]

    @api.get("/gateways", response_model=list[GatewayInfo], dependencies=read)
    def list_gateways(
        request: Request,
        response: Response,
        estate: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    ) -> list[GatewayInfo]:
        """Every gateway seen or enrolled (enrolled ones never heard from have no last_seen)."""
        rows = page_of_gateways(all_rows(visible(principal_of(request), estate)), cursor, limit)
        _next_cursor(response, rows, limit, lambda r: r["gateway_id"])
        return [gateway_info(r) for r in rows]

    @api.get("/gateways/{gateway_id}", response_model=GatewayInfo, dependencies=read)
    def get_gateway(request: Request, gateway_id: str) -> GatewayInfo:
        ids = visible(principal_of(request))
        if ids is not None and gateway_id not in ids:
            raise HTTPException(404, "no such gateway is enrolled or has been seen")
        rows = store.gateway_rows(frozenset({gateway_id}))
        if not rows:
            if not enrolled(gateway_id):
                raise HTTPException(404, "no such gateway is enrolled or has been seen")
            return gateway_info(unseen(gateway_id))
        return gateway_info(rows[0])

    def fleet_entry(row: dict[str, Any], now: float) -> FleetEntry:
        gw = row["gateway_id"]
        reported = row["backlog"].get("lanes")
        backlog: dict[str, dict[str, Any]] = {}
        oldest: float | None = None
        if isinstance(reported, dict):
            for lane, info in reported.items():
                if not isinstance(info, dict):
                    continue
                backlog[str(lane)] = {k: info.get(k) for k in ("rows", "batches", "batch_bytes")}
                ts = info.get("oldest_ts")
                if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
                    oldest = ts if oldest is None else min(oldest, ts)
        batches = [row["lanes"][lane]["last_batch_at"] for lane in row["lanes"]]
        versions = row["versions"]
        return FleetEntry(
            gateway_id=gw,
            estate=estate_of(gw),
            name=name_of(gw) or versions.get("site_name"),
            online=row["state"] == "online",
            last_seen=row["last_seen"],
            last_batch_at=max((b for b in batches if b is not None), default=None),
            backlog=backlog,
            oldest_unacked_age_s=None if oldest is None else max(0.0, now - oldest),
            firmware_version=versions.get("firmware_version"),
            config_version=versions.get("config_version"),
            active_alarms=row["active_alarms"],
        )

    @api.get("/fleet", response_model=list[FleetEntry], dependencies=read)
    def fleet(
        request: Request,
        response: Response,
        estate: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    ) -> list[FleetEntry]:
        """Every gateway of the visible estates with what it reports (one read, no query per gateway)."""
        rows = page_of_gateways(all_rows(visible(principal_of(request), estate)), cursor, limit)
        _next_cursor(response, rows, limit, lambda r: r["gateway_id"])
        now = time.time()
        return [fleet_entry(r, now) for r in rows]

    @api.get("/estates", response_model=list[EstateInfo], dependencies=read)
    def estates(request: Request) -> list[EstateInfo]:
        """Per estate: gateways, how many are online or not, active alarms by class."""
        out: dict[str, EstateInfo] = {}
        for row in all_rows(visible(principal_of(request))):
            name = estate_of(row["gateway_id"])
            info = out.setdefault(
                name, EstateInfo(estate=name, gateways=0, online=0, offline=0, active_alarms={})
            )
            info.gateways += 1
            if row["state"] == "online":
                info.online += 1
            else:
                info.offline += 1
            for klass, n in row["active_alarms"].items():
                info.active_alarms[klass] = info.active_alarms.get(klass, 0) + n
        return [out[k] for k in sorted(out)]

    def point_value(r: dict[str, Any]) -> PointValue:
        return PointValue(**r, estate=estate_of(r["gateway_id"]))

    @api.get("/points", response_model=list[PointValue], dependencies=read)
    def latest_points(
        request: Request,
        response: Response,
        gateway: str | None = None,
        estate: str | None = None,
        prefix: str | None = None,
        q: Annotated[str | None, Query(max_length=200, description="substring of the point id")] = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> list[PointValue]:
        """Latest value and quality of each point (newest receipt time wins, whatever the arrival order)."""
        after = _decode_cursor(cursor)
        if after is not None and not isinstance(after, str):
            raise HTTPException(422, "cursor is not one this API handed out")
        ids = narrow(visible(principal_of(request), estate), gateway)
        rows = store.latest(gateways=ids, prefix=prefix, q=q, after=after, limit=limit + 1)
        _next_cursor(response, rows, limit, lambda r: r["point_id"])
        return [point_value(r) for r in rows]

    def check_point(request: Request, point_id: str) -> None:
        ids = visible(principal_of(request))
        if ids is None:
            return  # unrestricted: an unknown point has an empty history, as always
        gw = store.point_gateway(point_id)
        if gw is None or gw not in ids:
            raise HTTPException(404, "no such point")

    @api.get(
        "/points/{point_id:path}/history",
        response_model=History,
        dependencies=read,
        responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
    )
    def point_history(
        request: Request,
        point_id: Annotated[str, Path()],
        start: Annotated[float, Query(alias="from", allow_inf_nan=False, description=_TIME)],
        end: Annotated[float, Query(alias="to", allow_inf_nan=False, description=_TIME)],
        step: Annotated[
            float | None, Query(gt=0, allow_inf_nan=False, description="bucket width, seconds")
        ] = None,
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",  # noqa: A002
    ) -> Any:
        if end <= start:
            raise HTTPException(422, "'to' must be after 'from'")
        check_point(request, point_id)
        if step is None:
            limit = config.history_max_rows
            rows = store.history(point_id, start, end, limit + 1)
            history = History(
                point_id=point_id,
                start=start,
                end=end,
                step_s=None,
                samples=[HistorySample(**r) for r in rows[:limit]],
                truncated=len(rows) > limit,
            )
        else:
            if (end - start) / step > _MAX_BUCKETS:
                raise HTTPException(422, f"at most {_MAX_BUCKETS} buckets per request")
            buckets = [HistoryBucket(**b) for b in store.history_buckets(point_id, start, end, step)]
            history = History(point_id=point_id, start=start, end=end, step_s=step, buckets=buckets)
        if format == "json":
            return history
        return csv_response(history)

    def csv_response(history: History) -> Response:
        out = io.StringIO()
        writer = csv.writer(out)
        if history.samples is not None:
            writer.writerow(["ts", "source_ts", "value", "quality", "reason", "historical"])
            for s in history.samples:
                writer.writerow(
                    [s.ts, s.source_ts, _csv_cell(s.value), s.quality, _csv_cell(s.reason), s.historical]
                )
        else:
            writer.writerow(["ts", "count", "avg", "min", "max", "last"])
            for b in history.buckets or []:
                writer.writerow([b.ts, b.count, b.avg, b.min, b.max, _csv_cell(b.last)])
        # ASCII only: a header is latin-1, so "Ā" (alphanumeric) made a 500 (found by tests/fuzz)
        keep = (c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in history.point_id)
        safe_name = "".join(keep)[:100]
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{safe_name}.csv"'},
        )

    def event_page(
        request: Request,
        response: Response,
        *,
        gateway: str | None,
        kind: str | None,
        start: float | None,
        end: float | None,
        cursor: str | None,
        limit: int,
    ) -> list[EventOut]:
        after = _float_cursor(_decode_cursor(cursor), list)
        ids = narrow(visible(principal_of(request)), gateway)
        rows = store.events(
            gateways=ids,
            kind=kind,
            start=start,
            end=end,
            after=None if after is None else (float(after[0]), int(after[1])),
            limit=limit + 1,
        )
        _next_cursor(response, rows, limit, lambda r: [r["ts"], r["id"]])
        return [EventOut(**{k: v for k, v in r.items() if k != "id"}) for r in rows]

    @api.get("/events", response_model=list[EventOut], dependencies=read)
    def list_events(
        request: Request,
        response: Response,
        gateway: str | None = None,
        kind: str | None = None,
        start: Annotated[float | None, Query(alias="from", allow_inf_nan=False, description=_TIME)] = None,
        end: Annotated[float | None, Query(alias="to", allow_inf_nan=False, description=_TIME)] = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    ) -> list[EventOut]:
        return event_page(
            request, response, gateway=gateway, kind=kind, start=start, end=end, cursor=cursor, limit=limit
        )

    def alarm_out(r: dict[str, Any]) -> AlarmOut:
        return AlarmOut(**{k: v for k, v in r.items() if k != "version"}, estate=estate_of(r["gateway_id"]))

    def alarm_states(state: str | None, active: bool | None) -> list[str] | None:
        states: set[str] | None = None
        if state is not None:
            states = {s for s in state.split(",") if s}
            if not states <= set(ALARM_STATES):
                raise HTTPException(422, f"state is one or more of {', '.join(ALARM_STATES)}")
        if active is not None:
            chosen = set(_ACTIVE_STATES) if active else set(ALARM_STATES) - set(_ACTIVE_STATES)
            states = chosen if states is None else states & chosen
        return None if states is None else sorted(states)

    @api.get("/alarms", response_model=list[AlarmOut], dependencies=read)
    def list_alarms(
        request: Request,
        response: Response,
        estate: str | None = None,
        gateway: str | None = None,
        alarm_class: Annotated[str | None, Query(alias="class")] = None,
        priority: str | None = None,
        state: Annotated[str | None, Query(description="comma-separated: " + ", ".join(ALARM_STATES))] = None,
        active: bool | None = None,
        start: Annotated[float | None, Query(alias="from", allow_inf_nan=False, description=_TIME)] = None,
        end: Annotated[float | None, Query(alias="to", allow_inf_nan=False, description=_TIME)] = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[AlarmOut]:
        """Alarm episodes, newest first, with their lifecycle (materialised from alarm events)."""
        after = _decode_cursor(cursor)
        if after is not None and not isinstance(after, int):
            raise HTTPException(422, "cursor is not one this API handed out")
        rows = store.alarms(
            gateways=narrow(visible(principal_of(request), estate), gateway),
            alarm_class=alarm_class,
            priority=priority,
            states=alarm_states(state, active),
            start=start,
            end=end,
            after=after,
            limit=limit + 1,
        )
        _next_cursor(response, rows, limit, lambda r: r["id"])
        return [alarm_out(r) for r in rows]

    @api.get("/alarms/stats", response_model=AlarmStats, dependencies=read)
    def alarm_stats(
        request: Request,
        by: Annotated[str, Query(pattern="^(" + "|".join(ALARM_STATS_BY) + ")$")] = "class",
        estate: str | None = None,
        start: Annotated[float | None, Query(alias="from", allow_inf_nan=False, description=_TIME)] = None,
        end: Annotated[float | None, Query(alias="to", allow_inf_nan=False, description=_TIME)] = None,
    ) -> AlarmStats:
        """Alarm episodes raised in [from, to) counted by class, priority, estate, gateway, state,
        day or hour (UTC)."""
        ids = visible(principal_of(request), estate)
        counts = store.alarm_counts(
            gateways=ids, start=start, end=end, by="gateway" if by == "estate" else by
        )
        if by == "estate":
            merged: dict[str, int] = {}
            for gw, n in counts:
                merged[estate_of(gw)] = merged.get(estate_of(gw), 0) + n
            counts = sorted(merged.items())
        return AlarmStats(by=by, buckets=[StatsBucket(key=k, count=n) for k, n in counts])

    @api.get(
        "/alarms/stream",
        dependencies=read,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "event: alarm, data: AlarmOut"}
        },
    )
    async def alarm_stream(
        request: Request,
        estate: str | None = None,
        alarm_class: Annotated[str | None, Query(alias="class")] = None,
        priority: str | None = None,
    ) -> StreamingResponse:
        """Server-Sent Events: `event: alarm` with the alarm's JSON on every change; `: keepalive` every 15 s.

        Follows the database, so it sees what every ingest process stores."""
        ids = visible(principal_of(request), estate)
        since = await run_in_threadpool(store.alarm_version)

        def changes(version: int) -> list[dict[str, Any]]:
            return store.alarms(
                gateways=ids, alarm_class=alarm_class, priority=priority, since_version=version, limit=1000
            )

        async def stream() -> AsyncIterator[str]:
            nonlocal since
            quiet = 0.0
            yield ": stream open\n\n"
            while not await request.is_disconnected():
                rows = await run_in_threadpool(changes, since)
                for r in rows:
                    since = max(since, int(r["version"]))
                    yield f"event: alarm\ndata: {alarm_out(r).model_dump_json()}\n\n"
                if rows:
                    quiet = 0.0
                    continue
                await asyncio.sleep(_STREAM_POLL_S)
                quiet += _STREAM_POLL_S
                if quiet >= _KEEPALIVE_S:
                    quiet = 0.0
                    yield ": keepalive\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @api.get("/audit/rejected", response_model=Audit, dependencies=admin)
    def audit_rejected(
        request: Request,
        response: Response,
        gateway: str | None = None,
        reason: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> Audit:
        ingestor.flush_audit()  # what was rejected a moment ago is waiting in the buffer
        before = _decode_cursor(cursor)
        if before is not None and not isinstance(before, int):
            raise HTTPException(422, "cursor is not one this API handed out")
        ids = narrow(visible(principal_of(request)), gateway)
        counts, rows = store.rejected(gateways=ids, reason=reason, before=before, limit=limit + 1)
        _next_cursor(response, rows, limit, lambda r: r["id"])
        return Audit(
            counts=counts, items=[RejectedOut(**{k: v for k, v in r.items() if k != "id"}) for r in rows]
        )

    @api.get("/audit/gaps", response_model=list[EventOut], dependencies=admin)
    def audit_gaps(
        request: Request,
        response: Response,
        gateway: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[EventOut]:
        """The gateways' evicted-data records (``outbox.gap``: sequence numbers that will never come)."""
        return event_page(
            request,
            response,
            gateway=gateway,
            kind="outbox.gap",
            start=None,
            end=None,
            cursor=cursor,
            limit=limit,
        )

    @api.post(
        "/ingest/{gateway_id}/{lane}",
        responses={
            200: {"content": {MSGPACK: {}, "application/json": {}}, "description": "the ack message"},
            400: {"description": "malformed envelope"},
            403: {"description": "unknown gateway or key, bad signature"},
            413: {"description": "payload too large"},
        },
    )
    async def ingest_batch(
        gateway_id: str,
        lane: str,
        request: Request,
        # A default rather than Annotated: postponed annotations cannot see this local.
        token: ApiToken = ingest_scope,
    ) -> Response:
        if token.gateways is not None and gateway_id not in token.gateways:
            raise HTTPException(403, f"this token may not ingest for gateway {gateway_id[:64]!r}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_PAYLOAD_BYTES:
                raise HTTPException(413, "payload too large")
        outcome = await run_in_threadpool(
            ingestor.ingest, bytes(body), gateway_id=gateway_id, lane=lane, transport="https"
        )
        if outcome.ack is None:
            status = _REJECT_STATUS.get(outcome.reason, 400)
            return Response(
                json.dumps({"error": outcome.reason, "detail": outcome.detail}),
                status_code=status,
                media_type="application/json",
            )
        headers = {"X-Gatehouse-Ingest": outcome.status}
        if "application/json" in request.headers.get("accept", ""):
            return Response(json.dumps(outcome.ack.to_wire()), media_type="application/json", headers=headers)
        signed = signer.sign_ack(outcome.gateway_id, outcome.ack)
        return Response(signed, media_type=MSGPACK, headers=headers)

    app.include_router(api)
    return app
