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

import hashlib
import hmac
import json
import math
from collections.abc import Callable
from typing import Annotated, Any, Final

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_sync.central.config import ApiConfig, ApiToken
from cloud_sync.central.ingest import Ingestor
from cloud_sync.central.store import CentralStore
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
    "bad_signature": 403,
    "gateway_mismatch": 403,
    "lane_mismatch": 400,
    "bad_route": 404,
}


# Module level: with postponed annotations FastAPI resolves ``Depends(_BEARER)`` from globals.
_BEARER = HTTPBearer(auto_error=False)
_INGEST_PREFIX: Final = "/api/v1/ingest/"
_TIME = "seconds since the epoch, finite"


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
        limit = self.ingest_max_bytes if path.startswith(_INGEST_PREFIX) else self.other_max_bytes
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


class LanePosition(BaseModel):
    acked: int
    highest: int
    missing: list[tuple[int, int]]
    reported: int | None


class GatewayInfo(BaseModel):
    gateway_id: str
    enrolled: bool
    online: bool
    state: str
    first_seen: float | None  # None: enrolled but never heard from
    last_seen: float | None
    state_ts: float | None
    backlog: dict[str, Any]
    lanes: dict[str, LanePosition]


class PointValue(BaseModel):
    point_id: str
    gateway_id: str
    ts: float
    source_ts: float | None
    value: bool | int | float | str | None
    quality: int
    reason: str


class HistorySample(BaseModel):
    ts: float
    source_ts: float | None
    value: bool | int | float | str | None
    quality: int
    reason: str
    historical: bool


class HistoryBucket(BaseModel):
    ts: float  # bucket start
    count: int  # records in the bucket, any quality
    avg: float | None  # over good numeric values
    min: float | None
    max: float | None
    last: bool | int | float | str | None  # the newest value in the bucket, any quality


class History(BaseModel):
    point_id: str
    start: float
    end: float
    step_s: float | None
    samples: list[HistorySample] | None = None
    buckets: list[HistoryBucket] | None = None
    truncated: bool = False


class EventOut(BaseModel):
    gateway_id: str
    seq: int
    kind: str
    source: str
    ts: float
    data: dict[str, Any]
    historical: bool


class RejectedOut(BaseModel):
    received_at: float
    transport: str
    gateway_id: str
    lane: str
    seq: int | None
    reason: str
    detail: str
    size: int
    digest: str


class Audit(BaseModel):
    counts: dict[str, int]
    items: list[RejectedOut]


def _finite(value: Any) -> Any:
    # JSON has no NaN or infinity; a value that is not a number is reported as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def create_api(
    store: CentralStore,
    ingestor: Ingestor,
    config: ApiConfig,
    *,
    signer: DownlinkSigner,
    enrolled: Callable[[str], bool] = lambda _gw: True,
    enrolled_ids: Callable[[], list[str]] = list,
) -> FastAPI:
    tokens = [(t.digest(), t) for t in config.tokens]

    def require_token(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        if creds is not None and creds.scheme.lower() == "bearer":
            offered = hashlib.sha256(creds.credentials.encode("utf-8")).hexdigest()
            # Compare against every token so the time taken does not say which one nearly matched.
            matches = [t for d, t in tokens if hmac.compare_digest(offered, d)]
            if matches:
                request.state.api_token = matches[0]
                return
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    def scope(name: str) -> Any:
        def check(request: Request) -> ApiToken:
            token: ApiToken = request.state.api_token
            if name not in token.scopes:
                raise HTTPException(403, f"this token lacks the {name!r} scope")
            return token

        return Depends(check)

    read, admin, ingest_scope = [scope("read")], [scope("admin")], scope("ingest")

    app = FastAPI(
        title="Gatehouse central",
        version="1",
        description="Read gateway state, point values, history, events and the batch audit; "
        "ingest signed batches over HTTPS. Wire format: docs/protocol.md.",
    )
    app.add_middleware(BodyLimit, ingest_max_bytes=MAX_PAYLOAD_BYTES, other_max_bytes=config.max_body_bytes)
    # Router dependencies run before each route's own, so the scope checks see the token.
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

    def gateway_info(row: Any) -> GatewayInfo:
        gw = row["gateway_id"]
        reported = json.loads(row["reported_seq"])
        lanes: dict[str, LanePosition] = {}
        with store.reader() as db:
            highest = dict(
                db.execute(
                    "SELECT lane, max(seq) FROM batches WHERE gateway_id=? GROUP BY lane", (gw,)
                ).fetchall()
            )
        for lane in Lane:
            acked, missing = store.ack_position(gw, lane)
            top = reported.get(lane.value)
            lanes[lane.value] = LanePosition(
                acked=acked,
                highest=int(highest.get(lane.value) or 0),
                missing=list(missing),
                reported=top if type(top) is int else None,
            )
        return GatewayInfo(
            gateway_id=gw,
            enrolled=enrolled(gw),
            online=row["state"] == "online",
            state=row["state"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            state_ts=row["state_ts"],
            backlog=json.loads(row["backlog"]),
            lanes=lanes,
        )

    def unseen(gw: str) -> dict[str, Any]:
        return {
            "gateway_id": gw,
            "reported_seq": "{}",
            "state": "unknown",
            "first_seen": None,
            "last_seen": None,
            "state_ts": None,
            "backlog": "{}",
        }

    @api.get("/gateways", response_model=list[GatewayInfo], dependencies=read)
    def list_gateways() -> list[GatewayInfo]:
        """Every gateway seen or enrolled (enrolled ones never heard from have no last_seen)."""
        with store.reader() as db:
            rows: dict[str, Any] = {r["gateway_id"]: r for r in db.execute("SELECT * FROM gateways")}
        for gw in enrolled_ids():
            rows.setdefault(gw, unseen(gw))
        return [gateway_info(rows[gw]) for gw in sorted(rows)]

    @api.get("/gateways/{gateway_id}", response_model=GatewayInfo, dependencies=read)
    def get_gateway(gateway_id: str) -> GatewayInfo:
        with store.reader() as db:
            row = db.execute("SELECT * FROM gateways WHERE gateway_id=?", (gateway_id,)).fetchone()
        if row is None:
            if not enrolled(gateway_id):
                raise HTTPException(404, "no such gateway is enrolled or has been seen")
            return gateway_info(unseen(gateway_id))
        return gateway_info(row)

    @api.get("/points", response_model=list[PointValue], dependencies=read)
    def latest_points(
        gateway: str | None = None,
        prefix: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> list[PointValue]:
        sql = "SELECT * FROM latest WHERE 1=1"
        args: list[Any] = []
        if gateway is not None:
            sql += " AND gateway_id=?"
            args.append(gateway)
        if prefix is not None:
            # substr() rather than LIKE: point ids may contain % and _.
            sql += " AND substr(point_id, 1, ?)=?"
            args += [len(prefix), prefix]
        sql += " ORDER BY point_id LIMIT ?"
        args.append(limit)
        with store.reader() as db:
            rows = db.execute(sql, args).fetchall()
        return [
            PointValue(
                point_id=r["point_id"],
                gateway_id=r["gateway_id"],
                ts=r["ts"],
                source_ts=r["source_ts"],
                value=bool(r["value"]) if r["is_bool"] else _finite(r["value"]),
                quality=r["quality"],
                reason=r["reason"],
            )
            for r in rows
        ]

    @api.get("/points/{point_id:path}/history", response_model=History, dependencies=read)
    def point_history(
        point_id: Annotated[str, Path()],
        start: Annotated[float, Query(alias="from", allow_inf_nan=False, description=_TIME)],
        end: Annotated[float, Query(alias="to", allow_inf_nan=False, description=_TIME)],
        step: Annotated[
            float | None, Query(gt=0, allow_inf_nan=False, description="bucket width, seconds")
        ] = None,
    ) -> History:
        if end <= start:
            raise HTTPException(422, "'to' must be after 'from'")
        if step is None:
            limit = config.history_max_rows
            with store.reader() as db:
                rows = db.execute(
                    "SELECT ts, source_ts, value, quality, reason, historical FROM telemetry"
                    " WHERE point=(SELECT id FROM points WHERE point_id=?) AND ts>=? AND ts<?"
                    " ORDER BY ts LIMIT ?",
                    (point_id, start, end, limit + 1),
                ).fetchall()
            samples = [
                HistorySample(
                    **{**dict(r), "value": _finite(r["value"]), "historical": bool(r["historical"])}
                )
                for r in rows[:limit]
            ]
            return History(
                point_id=point_id,
                start=start,
                end=end,
                step_s=None,
                samples=samples,
                truncated=len(rows) > limit,
            )
        if (end - start) / step > _MAX_BUCKETS:
            raise HTTPException(422, f"at most {_MAX_BUCKETS} buckets per request")
        bucket = "CAST((ts - ?) / ? AS INTEGER)"
        where = "point=(SELECT id FROM points WHERE point_id=?) AND ts>=? AND ts<?"
        with store.reader() as db:
            stats = db.execute(
                f"SELECT {bucket} AS b, count(*),"
                " avg(CASE WHEN quality=0 AND typeof(value) IN ('integer','real') THEN value END),"
                " min(CASE WHEN quality=0 AND typeof(value) IN ('integer','real') THEN value END),"
                " max(CASE WHEN quality=0 AND typeof(value) IN ('integer','real') THEN value END)"
                f" FROM telemetry WHERE {where} GROUP BY b ORDER BY b",
                (start, step, point_id, start, end),
            ).fetchall()
            # SQLite returns the bare column from the row that holds max(ts): the bucket's last value.
            lasts = dict(
                (r[0], r[1])
                for r in db.execute(
                    f"SELECT {bucket} AS b, value, max(ts) FROM telemetry WHERE {where} GROUP BY b",
                    (start, step, point_id, start, end),
                )
            )
        buckets = [
            HistoryBucket(
                ts=start + b * step,
                count=n,
                avg=_finite(a),
                min=_finite(lo),
                max=_finite(hi),
                last=_finite(lasts.get(b)),
            )
            for b, n, a, lo, hi in stats
        ]
        return History(point_id=point_id, start=start, end=end, step_s=step, buckets=buckets)

    @api.get("/events", response_model=list[EventOut], dependencies=read)
    def list_events(
        gateway: str | None = None,
        kind: str | None = None,
        start: Annotated[float | None, Query(alias="from", allow_inf_nan=False, description=_TIME)] = None,
        end: Annotated[float | None, Query(alias="to", allow_inf_nan=False, description=_TIME)] = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    ) -> list[EventOut]:
        sql = "SELECT * FROM events WHERE 1=1"
        args: list[Any] = []
        for clause, value in (
            (" AND gateway_id=?", gateway),
            (" AND kind=?", kind),
            (" AND ts>=?", start),
            (" AND ts<?", end),
        ):
            if value is not None:
                sql += clause
                args.append(value)
        sql += " ORDER BY ts, id LIMIT ?"
        args.append(limit)
        with store.reader() as db:
            rows = db.execute(sql, args).fetchall()
        return [
            EventOut(
                gateway_id=r["gateway_id"],
                seq=r["seq"],
                kind=r["kind"],
                source=r["source"],
                ts=r["ts"],
                data=json.loads(r["data"]),
                historical=bool(r["historical"]),
            )
            for r in rows
        ]

    @api.get("/audit/rejected", response_model=Audit, dependencies=admin)
    def audit_rejected(
        gateway: str | None = None,
        reason: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> Audit:
        ingestor.flush_audit()  # what was rejected a moment ago is waiting in the buffer
        sql = "SELECT * FROM rejected WHERE 1=1"
        args: list[Any] = []
        if gateway is not None:
            sql += " AND gateway_id=?"
            args.append(gateway)
        if reason is not None:
            sql += " AND reason=?"
            args.append(reason)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with store.reader() as db:
            counts = dict(db.execute("SELECT reason, count(*) FROM rejected GROUP BY reason").fetchall())
            rows = db.execute(sql, args).fetchall()
        items = [RejectedOut(**{**dict(r), "digest": bytes(r["digest"]).hex()}) for r in rows]
        return Audit(counts=counts, items=items)

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
