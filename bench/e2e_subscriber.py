"""The counting side of ``bench.e2e_scale``: an MQTT subscriber of its own on the broker.

Logs in as central's broker user (the only one the ACL lets read ``gh/v1/+/up/#``) under a
client id of its own, so central keeps its own session and acks as deployed. Every telemetry
batch is decoded with the real decoder (``cloud_sync.envelope``: header, then the zstd/msgpack
records) and each value's age is taken against its ``receipt_ts`` (when the gateway read it).

Every second it prints one JSON line per gateway heard in that second::

    {"t": wall time, "gw": "gw-500", "n": values, "batches": 3, "ages": [sampled ages, s]}

``ages`` holds every ``SAMPLE_EVERY``-th value's age (a systematic sample, plenty for p50/p99).
A line ``ready`` comes first, once the subscription is in place. Runs until killed.

With ``--backlog-before TS`` (``bench.backlog_drain``) values received by the gateway before TS
are a pre-filled backlog, not live values: a batch the gateway sealed as historical is counted
from its header alone (``hist``; decoding millions of backlog rows would take the cores the drain
is measured on), rows older than TS in other batches are counted as ``old``, and ``ages`` hold
live rows only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cloud_sync.envelope import decode_header, decode_records
from cloud_sync.mqtt_client import MqttSession, MqttSettings
from cloud_sync.ports import Lane

SAMPLE_EVERY = 10


@dataclass
class _Second:
    values: int = 0
    batches: int = 0
    historical: int = 0  # values of batches sealed as historical (not decoded)
    old: int = 0  # values received before --backlog-before in the other batches
    ages: list[float] = field(default_factory=list)


async def _run(args: argparse.Namespace, password: str) -> None:
    settings = MqttSettings(
        host=args.host,
        port=args.port,
        ca_file=Path(args.ca_file),
        client_id=args.client_id,
        username=args.username,
        password=password,
        keepalive_s=30,
        incoming_queue_size=1_000_000,
    )
    session = await MqttSession.open(settings)
    await session.subscribe(f"{args.prefix}/+/up/telemetry", qos=1)
    print("ready", flush=True)
    split: float | None = args.backlog_before
    counts: dict[str, _Second] = {}
    next_report = time.time() + 1.0
    while True:
        try:
            wait_s = max(0.0, next_report - time.time())
            message = await asyncio.wait_for(session.messages.get(), timeout=wait_s)
        except TimeoutError:
            message = None
        now = time.time()
        if message is not None:
            header = decode_header(message.payload)
            if header.lane is Lane.TELEMETRY:
                entry = counts.setdefault(header.gateway_id, _Second())
                entry.batches += 1
                if split is not None and header.historical:
                    entry.values += header.record_count
                    entry.historical += header.record_count
                else:
                    rows = decode_records(header)
                    entry.values += len(rows)
                    stamps = [r.receipt_ts for r in rows]  # type: ignore[union-attr]
                    if split is not None:
                        live = [ts for ts in stamps if ts >= split]
                        entry.old += len(stamps) - len(live)
                        stamps = live
                    entry.ages.extend(round(now - ts, 4) for ts in stamps[::SAMPLE_EVERY])
        if now >= next_report:
            for gw, sec in counts.items():
                line = {"t": round(now, 3), "gw": gw, "n": sec.values, "batches": sec.batches}
                if split is not None:
                    line |= {"hist": sec.historical, "old": sec.old}
                sys.stdout.write(json.dumps({**line, "ages": sec.ages}) + "\n")
            sys.stdout.flush()
            counts = {}
            next_report = now + 1.0
        if session.closed:
            raise SystemExit(f"subscriber session closed: {session.close_reason}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.e2e_subscriber")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--client-id", default="bench-counter")
    parser.add_argument("--prefix", default="gh/v1")
    parser.add_argument(
        "--backlog-before", type=float, help="values received before this (epoch s) are a backlog, not live"
    )
    try:
        args = parser.parse_args()
        asyncio.run(_run(args, Path(args.password_file).read_text().strip()))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
