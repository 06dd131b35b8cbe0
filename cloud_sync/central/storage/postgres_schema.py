"""PostgreSQL schema for central: versioned migrations and the partitions they rely on.

Telemetry and events are partitioned by time with native declarative partitioning (``PARTITION
BY RANGE (ts)``): telemetry by UTC day, events and the hourly aggregates by UTC month. Retention
drops whole partitions (``DROP TABLE``), which costs nothing per row and leaves no bloat.
Partitions are made on demand before a batch's rows go in. Times outside 2000–2100 (a gateway
with a broken clock) land in the table's default partition, so they never make partitions of
their own and never block the making of a normal one.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

__all__ = [
    "EVENTS",
    "HOURLY",
    "MIGRATIONS",
    "SANE_FROM",
    "SANE_TO",
    "TELEMETRY",
    "PartitionScheme",
    "partition_bounds",
    "partition_name",
]

SANE_FROM: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()
SANE_TO: Final = dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp()


class PartitionScheme:
    def __init__(self, table: str, unit: str) -> None:
        self.table = table
        self.unit = unit  # "day" or "month"


TELEMETRY: Final = PartitionScheme("telemetry", "day")
EVENTS: Final = PartitionScheme("events", "month")
HOURLY: Final = PartitionScheme("telemetry_hourly", "month")


def partition_bounds(scheme: PartitionScheme, ts: float) -> tuple[float, float, str]:
    """(start, end, suffix) of the partition holding ``ts`` (a time inside SANE_FROM..SANE_TO)."""
    when = dt.datetime.fromtimestamp(ts, dt.UTC)
    if scheme.unit == "day":
        start = when.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + dt.timedelta(days=1)
        suffix = start.strftime("%Y%m%d")
    else:
        start = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        suffix = start.strftime("%Y%m")
    return start.timestamp(), end.timestamp(), suffix


def partition_name(scheme: PartitionScheme, suffix: str) -> str:
    return f"{scheme.table}_p{suffix}"


def partition_end(scheme: PartitionScheme, name: str) -> float | None:
    """The upper bound of a partition named by :func:`partition_name`; None for other tables."""
    prefix = f"{scheme.table}_p"
    suffix = name.removeprefix(prefix)
    if suffix == name or not suffix.isdigit():
        return None
    fmt = "%Y%m%d" if scheme.unit == "day" else "%Y%m"
    try:
        start = dt.datetime.strptime(suffix, fmt).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return partition_bounds(scheme, start.timestamp())[1]


# MIGRATIONS[n] takes the database from version n to n + 1 (version 0: empty). Each runs in one
# transaction with its row in schema_migrations, under an advisory lock, so several central
# processes starting together migrate once.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
CREATE TABLE gateways (
    gateway_id text PRIMARY KEY,
    first_seen float8 NOT NULL,
    last_seen float8 NOT NULL,
    state text NOT NULL DEFAULT 'unknown',
    state_ts float8,
    backlog jsonb NOT NULL DEFAULT '{}',
    reported_seq jsonb NOT NULL DEFAULT '{}',
    versions jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE lanes (
    gateway_id text NOT NULL,
    lane text NOT NULL,
    acked bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (gateway_id, lane)
);
-- The primary key is the exactly-once guarantee: a (gateway, lane, seq) is stored once.
CREATE TABLE batches (
    gateway_id text NOT NULL,
    lane text NOT NULL,
    seq bigint NOT NULL,
    digest bytea NOT NULL,
    key_id text NOT NULL,
    sealed_at float8 NOT NULL,
    received_at float8 NOT NULL,
    record_count integer NOT NULL,
    historical boolean NOT NULL,
    transport text NOT NULL,
    PRIMARY KEY (gateway_id, lane, seq)
);
CREATE TABLE points (
    id serial PRIMARY KEY,
    point_id text NOT NULL UNIQUE,
    gateway_id text NOT NULL
);
-- vkind: 0 null, 1 bool, 2 int, 3 float, 4 text. vnum holds the number (bools as 0/1); vtext
-- the text, and the digits of an integer too large for a double.
CREATE TABLE telemetry (
    point integer NOT NULL,
    ts float8 NOT NULL,
    source_ts float8,
    vnum float8,
    vtext text,
    vkind smallint NOT NULL,
    quality smallint NOT NULL,
    reason text NOT NULL,
    historical boolean NOT NULL,
    seq bigint NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX telemetry_point_ts ON telemetry (point, ts);
CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT;
CREATE TABLE telemetry_hourly (
    point integer NOT NULL,
    hour float8 NOT NULL,
    count integer NOT NULL,
    avg float8,
    min float8,
    max float8,
    PRIMARY KEY (point, hour)
) PARTITION BY RANGE (hour);
CREATE TABLE telemetry_hourly_default PARTITION OF telemetry_hourly DEFAULT;
CREATE TABLE rollups (day float8 PRIMARY KEY, done_at float8 NOT NULL);
CREATE TABLE latest (
    point_id text PRIMARY KEY,
    gateway_id text NOT NULL,
    ts float8 NOT NULL,
    source_ts float8,
    vnum float8,
    vtext text,
    vkind smallint NOT NULL,
    quality smallint NOT NULL,
    reason text NOT NULL
);
CREATE TABLE events (
    id bigserial NOT NULL,
    gateway_id text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    source text NOT NULL,
    ts float8 NOT NULL,
    data jsonb NOT NULL,
    historical boolean NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX events_ts ON events (ts, id);
CREATE INDEX events_gateway_kind ON events (gateway_id, kind, ts);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE rejected (
    id bigserial PRIMARY KEY,
    received_at float8 NOT NULL,
    transport text NOT NULL,
    gateway_id text NOT NULL,
    lane text NOT NULL,
    seq bigint,
    reason text NOT NULL,
    detail text NOT NULL,
    size integer NOT NULL,
    digest bytea NOT NULL
);
CREATE INDEX rejected_gateway ON rejected (gateway_id, id);
CREATE SEQUENCE alarm_versions;
CREATE TABLE alarms (
    id bigserial PRIMARY KEY,
    gateway_id text NOT NULL,
    alarm_key text NOT NULL,
    point_id text,
    alarm_class text NOT NULL,
    priority text NOT NULL,
    state text NOT NULL,
    message text NOT NULL,
    raised_at float8 NOT NULL,
    acked_at float8,
    acked_by text,
    cleared_at float8,
    updated_at float8 NOT NULL,
    version bigint NOT NULL
);
CREATE UNIQUE INDEX alarms_open ON alarms (gateway_id, alarm_key) WHERE state <> 'closed';
CREATE INDEX alarms_raised ON alarms (raised_at);
CREATE INDEX alarms_version ON alarms (version);
-- Every change of an alarm row, as it was then: the live stream sends each one, not only the last.
CREATE TABLE alarm_changes (
    version bigint PRIMARY KEY,
    gateway_id text NOT NULL,
    alarm_class text NOT NULL,
    priority text NOT NULL,
    at float8 NOT NULL,
    data jsonb NOT NULL
);
CREATE INDEX alarms_active ON alarms (gateway_id, alarm_class)
    WHERE state IN ('active_unacked', 'active_acked');
""",
    # 2: every group of batches rewrites the latest row of each point it carries. With room left
    # on each page, PostgreSQL updates in place (a heap-only tuple: no new index entry, no page
    # split); a draining backlog's latest upsert costs about a quarter less. Pages written
    # before this change keep their fill until the next VACUUM FULL.
    """
ALTER TABLE latest SET (fillfactor = 50);
""",
)
