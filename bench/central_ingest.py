"""Central's ingest path without the network: decode + verify + store of signed batches.

What central must sustain for the end-to-end target (≥ 100,000 points/s through Mosquitto into
central's storage). Batches are sealed beforehand (sealing is the gateway's cost); the timed part
is exactly what central does per batch: ``Ingestor.ingest`` into a real SQLite file.

Run: ``.venv/bin/python -m bench.central_ingest [BATCH_RECORDS ...]``; writes
``bench/results/central_ingest.json``.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.central.ingest import Ingestor, KeyRegistry
from cloud_sync.central.store import CentralStore
from cloud_sync.envelope import decode_header, decode_records, make_sealer, verify_envelope
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane, TelemetryRow

RESULTS = Path(__file__).resolve().parent / "results" / "central_ingest.json"
TOTAL_RECORDS = 400_000
POINTS = 2_000


def _batches(records_per_batch: int, key: Ed25519PrivateKey) -> list[bytes]:
    seal = make_sealer("gw-bench", key_id(key.public_key()), key)
    out: list[bytes] = []
    t0 = 1_767_225_600.0
    for seq in range(1, TOTAL_RECORDS // records_per_batch + 1):
        base = (seq - 1) * records_per_batch
        rows = [
            TelemetryRow(
                f"estate/dev{(base + i) % POINTS // 20}/p{(base + i) % 20}",
                (base + i) * 0.1,
                0,
                "",
                t0 + (base + i) * 0.001,
                None,
            )
            for i in range(records_per_batch)
        ]
        out.append(seal(lane=Lane.TELEMETRY, seq=seq, rows=rows, historical=False, sealed_at=t0 + seq))
    return out


def run(records_per_batch: int, group: int) -> dict[str, float | int]:
    key = Ed25519PrivateKey.generate()
    payloads = _batches(records_per_batch, key)
    with tempfile.TemporaryDirectory() as folder:
        store = CentralStore(Path(folder) / "central.db")
        registry = KeyRegistry()
        registry.enroll("gw-bench", key.public_key())
        ingestor = Ingestor(store, registry, clock=time.time)
        # Decode + verify alone, to see where the time goes.
        start = time.perf_counter()
        for p in payloads:
            header = decode_header(p)
            verify_envelope(header, key.public_key())
            decode_records(header)
        decode_s = time.perf_counter() - start
        groups = [
            [(p, "gw-bench", "telemetry") for p in payloads[i : i + group]]
            for i in range(0, len(payloads), group)
        ]
        start = time.perf_counter()
        # As the MQTT worker does it: verify group N+1 in one thread while group N commits.
        with ThreadPoolExecutor(1) as verifier:
            pending = verifier.submit(ingestor.verify_many, groups[0], transport="bench")
            for nxt in [*groups[1:], None]:
                prepared = pending.result()
                if nxt is not None:
                    pending = verifier.submit(ingestor.verify_many, nxt, transport="bench")
                outcomes = ingestor.commit(prepared, transport="bench")
                assert all(o.status == "stored" for o in outcomes), outcomes
        ingest_s = time.perf_counter() - start
        stored = store.count("telemetry")
        store.close()
    records = len(payloads) * records_per_batch
    assert stored == records
    return {
        "records_per_batch": records_per_batch,
        "batches_per_commit": group,
        "batches": len(payloads),
        "mean_payload_bytes": sum(map(len, payloads)) // len(payloads),
        "bytes_per_record": round(sum(map(len, payloads)) / records, 2),
        "decode_verify_records_per_s": round(records / decode_s),
        "ingest_records_per_s": round(records / ingest_s),
        "ingest_batches_per_s": round(len(payloads) / ingest_s, 1),
    }


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [1_000, 5_000]
    # One batch per commit is the HTTPS POST path; groups are what the MQTT worker commits when
    # batches queue up (up to 16).
    results = [run(size, group) for size in sizes for group in (1, 16)]
    for result in results:
        print("  " + "  ".join(f"{k}={v}" for k, v in result.items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "results": results,
                "total_records": TOTAL_RECORDS,
                "python": sys.version.split()[0],
                "machine": platform.machine(),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
