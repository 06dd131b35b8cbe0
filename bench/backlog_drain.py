"""backlog_drain: a backlog of 5 M samples drained while 500 devices keep polling (target ≤ 60 s).

The scene after an outage: the gateway restarts with millions of historical samples in its outbox
and must get them to central while its devices keep being polled, without live values falling
behind. Everything is set up as in ``bench.e2e_scale`` (its functions, not copies), each part its
own process: N simulated Modbus TCP devices, the project's TLS Mosquitto, the real central
(SQLite, or with ``--central-db postgres`` a private PostgreSQL, fsync on), the counting
subscriber and the real gateway daemon at shipped settings. Before the gateway starts its outbox
(the site's ``data_dir``) is filled through ``edge.outbox.Outbox`` itself with ``--samples``
samples of the site's own points, received in the ten minutes before the bench started, one
round of every point per second.

Measured, from the gateway's start (process spawned) to the last backlog batch stored at central
(``batches.received_at`` of the highest sequence number holding a backlog row; central acks it at
once and the gateway deletes it):

* ``drain_s`` and the drain rate (backlog values / ``drain_s``), also from the uplink's first
  batch at central (start-up excluded);
* whether live polling kept going meanwhile: polled / due (the gateway's ``/metrics``), live values
  at the broker / polled, the age of live values at the broker (p50 / p99, the subscriber's receive
  time minus the gateway's receipt time) and live values central stored as historical (they were
  older than the outbox's live window when sealed: queued behind the backlog);
* CPU of every process over the drain (the gateway's threads separately: one at 100 % of a core
  is a limit of its own), the gateway's outbox rows and CPU shares second by second;
* the same live figures over ``--after-s`` once the backlog is gone, for comparison.

``--py-spy DIR`` records sampled stacks of the gateway and central over the drain (py-spy, raw
collapsed format) to show which of them is the limit; it costs CPU, so not for headline figures.

Run: ``python -m bench backlog_drain`` or ``python -m bench.backlog_drain [--samples 5000000]
[--devices 500] [--central-db sqlite|postgres] [--workdir DIR] [--base-port 14000]``. Writes
``bench/results/backlog_drain.json``, one entry per central database (a run replaces its own).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.e2e_scale import (
    POINTS_PER_DEVICE,
    Counter,
    Step,
    _metric,
    _percentile,
    _polls_ok,
    _popen,
    _scrape,
    _services,
    _site_yaml,
    _stop,
    central_postgres,
    postmaster_pid,
)
from bench.process_tree import thread_cpu_s, tree_cpu_s, tree_rss
from cloud_sync.central.storage.local_pg import Postgres
from core.model import Quality, Sample
from edge.config.loader import load_site
from edge.config.site import Site
from edge.outbox import Outbox
from tests.integration.sync.helpers import signing_key
from tests.support import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "backlog_drain.json"
TARGET_DRAIN_S = 60.0
DEFAULT_SAMPLES = 5_000_000
DEFAULT_DEVICES = 500
KEPT_UP_SHARE = 0.97
TARGET_LIVE_P99_MS = 1000
# The backlog ends this long before the bench starts: older than the outbox's live window and
# than anything the live polling will write.
BACKLOG_ENDS_BEFORE_S = 600.0
_OLDEST = 'gatehouse_outbox_oldest_unacked_age_seconds{lane="telemetry"}'
_ROWS = 'gatehouse_outbox_rows{lane="telemetry"}'
_BATCHES = 'gatehouse_outbox_batches{lane="telemetry"}'


# -- the backlog ------------------------------------------------------------------------------
async def _fill(site: Site, samples: int, ts_end: float) -> int:
    """``samples`` values of the site's points into its outbox, through the outbox's own writer;
    returns how many points they cover. Rounds of every point, one per second, ending at
    ``ts_end``: receipt times grow with the row id, as the outbox expects of arrival order."""
    points = [site.point_id(d.id, p.id) for d in site.devices for p in d.points]
    per_round = len(points)
    rounds = -(-samples // per_round)
    first_round = ts_end - rounds
    step = 1.0 / per_round
    cfg = site.config.outbox
    chunk = 20_000
    # The site's quota, so that filling never evicts what the gateway would keep; a bigger queue
    # and group commit than the daemon's only make the filling quicker (the rows are the same).
    async with Outbox(
        site.outbox_path, quota_bytes=cfg.quota_bytes, queue_size=200_000, commit_batch=chunk
    ) as outbox:
        for start in range(0, samples, chunk):
            batch = []
            for i in range(start, min(start + chunk, samples)):
                r, k = divmod(i, per_round)
                ts = first_round + r + k * step
                batch.append(Sample(points[k], (r * 7919 + k) % 65536, Quality.GOOD, ts))
            await outbox.put_samples(batch)
        await outbox.flush()
    return per_round


# -- central's view ---------------------------------------------------------------------------
@dataclass
class CentralDb:
    """Reads central's database, SQLite file or private PostgreSQL, with the same SQL."""

    sqlite_path: Path | None = None
    pg: Postgres | None = None
    pg_name: str = ""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.pg is not None:
            out = self.pg.psql(sql, database=self.pg_name)
            return [
                tuple(None if cell == "" else float(cell) for cell in line.split("|"))
                for line in out.splitlines()
                if line
            ]
        assert self.sqlite_path is not None
        uri = f"file:{self.sqlite_path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]

    def one(self, sql: str) -> tuple[Any, ...]:
        return self.rows(sql)[0]


def _central_figures(db: CentralDb, gw: str, boundary: float) -> dict[str, Any]:
    """Backlog stored, when its last batch was stored, live rows stored late (as historical)."""
    b = repr(boundary)
    stored, last_seq = db.one(f"SELECT count(*), max(seq) FROM telemetry WHERE ts < {b}")
    where = f"gateway_id = '{gw}' AND lane = 'telemetry'"
    first_at, last_at = db.one(
        f"SELECT min(received_at), max(received_at) FROM batches"
        f" WHERE {where} AND seq <= {int(last_seq or 0)}"
    )
    live, live_historical = db.one(
        f"SELECT count(*), coalesce(sum(CASE WHEN historical THEN 1 ELSE 0 END), 0)"
        f" FROM telemetry WHERE ts >= {b}"
    )
    return {
        "backlog_stored": int(stored),
        "last_backlog_seq": None if last_seq is None else int(last_seq),
        "first_batch_at": first_at,
        "last_backlog_batch_at": last_at,
        "live_stored": int(live),
        "live_stored_as_historical": int(live_historical),
    }


# -- watching the gateway ---------------------------------------------------------------------
@dataclass
class Tick:
    t: float
    cpu: dict[str, float]
    metrics: dict[str, float] | None


@dataclass
class Watch:
    pids: dict[str, int]
    dashboard_port: int
    ticks: list[Tick] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    def tick(self, scrape: bool) -> Tick:
        metrics = None
        if scrape:
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                metrics = _scrape(self.dashboard_port)
        cpu = {name: tree_cpu_s(pid) for name, pid in self.pids.items()}
        self.rss.append(tree_rss(self.pids["gateway"]))
        tick = Tick(time.time(), cpu, metrics)
        self.ticks.append(tick)
        return tick

    def scraped(self, t0: float, t1: float) -> list[Tick]:
        return [x for x in self.ticks if x.metrics is not None and t0 <= x.t <= t1]

    def at(self, t: float) -> Tick:
        """The last tick at or before ``t`` (the first one if none)."""
        before = [x for x in self.ticks if x.t <= t]
        return before[-1] if before else self.ticks[0]


def _live(counter: Counter, watch: Watch, gw: str, t0: float, t1: float, devices: int) -> dict[str, Any]:
    """Live polling and delivery over ``[t0, t1]``: polled / due from the first to the last scrape
    inside it, live values at the broker over the same span, their age."""
    lines = counter.lines(gw, t0, t1)
    ages = [a for x in lines for a in x["ages"]]
    scraped = watch.scraped(t0, t1)
    out: dict[str, Any] = {"span_s": round(t1 - t0, 1)}
    if len(scraped) >= 2:
        first, last = scraped[0], scraped[-1]
        assert first.metrics is not None and last.metrics is not None
        span = last.t - first.t
        polled = (_polls_ok(last.metrics) - _polls_ok(first.metrics)) * POINTS_PER_DEVICE
        due = devices * POINTS_PER_DEVICE * span
        published = sum(
            x["n"] - x.get("hist", 0) - x.get("old", 0) for x in lines if first.t < x["t"] <= last.t
        )
        out |= {
            "polled_span_s": round(span, 1),
            "polled_per_s": round(polled / span) if span else None,
            "polled_over_due": round(polled / due, 3) if due else None,
            "live_published_over_polled": round(published / polled, 3) if polled else None,
        }
    third = (t1 - t0) / 3
    early = [a for x in lines if x["t"] <= t0 + third for a in x["ages"]]
    late = [a for x in lines if x["t"] > t1 - third for a in x["ages"]]
    out["age_ms"] = {
        "p50": round(_percentile(ages, 0.5) * 1000) if ages else None,
        "p99": round(_percentile(ages, 0.99) * 1000) if ages else None,
        "max": round(max(ages) * 1000) if ages else None,
        "p50_first_third": round(_percentile(early, 0.5) * 1000) if early else None,
        "p50_last_third": round(_percentile(late, 0.5) * 1000) if late else None,
        "sampled": len(ages),
    }
    return out


def _cpu_over(watch: Watch, t0: float, t1: float) -> dict[str, float]:
    a, b = watch.at(t0), watch.at(t1)
    span = b.t - a.t
    if span <= 0:
        return {}
    return {name: round(100 * (b.cpu[name] - a.cpu.get(name, 0.0)) / span, 1) for name in b.cpu}


def _timeline(watch: Watch, t_start: float) -> list[dict[str, Any]]:
    """Every scrape: seconds since the gateway started, outbox rows and batches, CPU % since
    the previous scrape per process."""
    out: list[dict[str, Any]] = []
    previous: Tick | None = None
    for tick in watch.ticks:
        if tick.metrics is None:
            continue
        entry: dict[str, Any] = {
            "t": round(tick.t - t_start, 1),
            "rows": _metric(tick.metrics, _ROWS),
            "batches": _metric(tick.metrics, _BATCHES),
        }
        if previous is not None and tick.t > previous.t:
            span = tick.t - previous.t
            entry["cpu"] = {
                n: round(100 * (v - previous.cpu.get(n, 0.0)) / span) for n, v in tick.cpu.items()
            }
        out.append(entry)
        previous = tick
    return out


# -- py-spy -----------------------------------------------------------------------------------
def _spy(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        print("  (py-spy not installed in the venv: no stacks)", flush=True)
        return None
    return subprocess.Popen(
        [str(spy), "record", "-p", str(pid), "-r", "50", "-f", "raw", "-o", str(out), "--nonblocking"]
        + ["--threads", "--idle"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_spy(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is None or spy.poll() is not None:
        return
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


# -- one run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    samples: int
    devices: int
    base_port: int
    after_s: float
    timeout_s: float
    scrape_s: float
    py_spy: Path | None


def _drain(
    options: Options,
    step: Step,
    counter: Counter,
    others: dict[str, int],
    central_db: CentralDb,
    boundary: float,
    site_yaml: Path,
    dashboard_port: int,
) -> dict[str, Any]:
    site = load_site(site_yaml)
    fill_started = time.monotonic()
    ts_end = boundary - BACKLOG_ENDS_BEFORE_S
    points = asyncio.run(_fill(site, options.samples, ts_end))
    fill_s = time.monotonic() - fill_started
    outbox_mb = site.outbox_path.stat().st_size / 2**20
    print(f"  outbox filled: {options.samples} samples of {points} points in {fill_s:.1f} s", flush=True)
    sim = subprocess.Popen(
        [sys.executable, "-m", "bench.poll_scale_sim", "--count", str(step.count)]
        + ["--base-port", str(options.base_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    gateway: subprocess.Popen[bytes] | None = None
    spies: list[subprocess.Popen[bytes] | None] = []
    try:
        assert sim.stdout is not None
        if sim.stdout.readline().strip() != b"ready":
            raise RuntimeError("the simulator process did not start")
        # Baseline CPU of the others just before the gateway exists (the gateway's own is 0).
        pids0 = {"simulator": sim.pid, **others}
        log = step.folder / "gateway.log"
        t_start = time.time()
        own_cpu0 = time.process_time()
        gateway = _popen(
            [sys.executable, "-m", "edge", "run", "--config", str(site_yaml), "--log-level", "warning"], log
        )
        watch = Watch({"gateway": gateway.pid, **pids0}, dashboard_port)
        watch.ticks.append(
            Tick(t_start, {"gateway": 0.0, **{n: tree_cpu_s(p) for n, p in pids0.items()}}, None)
        )
        if options.py_spy is not None:
            options.py_spy.mkdir(parents=True, exist_ok=True)
            time.sleep(0.5)  # py-spy needs the interpreter up
            spies = [
                _spy(gateway.pid, options.py_spy / "gateway.txt"),
                _spy(others["central"], options.py_spy / "central.txt"),
            ]
        t_drained: float | None = None
        next_report = t_start + 5.0
        while True:
            # Central's database dates the drain's end exactly afterwards; this loop only has to
            # notice it, and each look (a scrape, /proc walks) costs the cores being measured.
            time.sleep(options.scrape_s)
            now = time.time()
            if gateway.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:])
            if now - t_start > options.timeout_s:
                print(f"  not drained after {options.timeout_s:.0f} s; stopping", flush=True)
                break
            tick = watch.tick(scrape=True)
            m = tick.metrics
            if t_drained is None and m is not None:
                age = _metric(m, _OLDEST)
                # Every backlog row sealed, stored at central and deleted on its ack: the oldest
                # record the gateway still holds was received after the bench started.
                if age is not None and tick.t - age > boundary and _metric(m, _ROWS) is not None:
                    t_drained = tick.t
                    for spy in spies:
                        _stop_spy(spy)
                    print(f"  drained (gateway's view) {t_drained - t_start:.1f} s after start", flush=True)
            if now >= next_report:
                next_report += 5.0
                counter.drain()
                seen = counter.lines(step.gw, t_start, now)
                at_broker = sum(x.get("hist", 0) + x.get("old", 0) for x in seen)
                rows = None if m is None else _metric(m, _ROWS)
                print(
                    f"  {now - t_start:5.1f} s: backlog at the broker {at_broker:,} / {options.samples:,},"
                    f" outbox rows {rows}",
                    flush=True,
                )
            if t_drained is not None and now - t_drained >= options.after_s:
                break
        t_end = time.time()
        threads = sorted(thread_cpu_s(gateway.pid).values(), reverse=True)
        gw_rss_peak = max(watch.rss) if watch.rss else 0
        time.sleep(2.0)  # the last values may still be on their way to the subscriber
    finally:
        for spy in spies:
            _stop_spy(spy)
        if gateway is not None:
            _stop(gateway)
        _stop(sim)
    figures = _central_figures(central_db, step.gw, boundary)
    drained_at = figures["last_backlog_batch_at"]
    complete = figures["backlog_stored"] == options.samples and t_drained is not None
    drain_s = (drained_at - t_start) if complete and drained_at else None
    from_first_s = (drained_at - figures["first_batch_at"]) if complete and drained_at else None
    t_window_end = drained_at if drain_s is not None else t_end
    during = _live(counter, watch, step.gw, t_start, t_window_end, step.count)
    after = _live(counter, watch, step.gw, t_window_end + 2.0, t_end, step.count) if t_drained else None
    cpu_during = _cpu_over(watch, t_start, t_window_end)
    p99 = during["age_ms"]["p99"]
    live_kept_up = (
        (during.get("polled_over_due") or 0) >= KEPT_UP_SHARE
        and (during.get("live_published_over_polled") or 0) >= KEPT_UP_SHARE
        and p99 is not None
        and p99 <= TARGET_LIVE_P99_MS
        and figures["live_stored_as_historical"] == 0
    )
    span = t_window_end - t_start
    return {
        "samples": options.samples,
        "devices": step.count,
        "points": points,
        "fill_s": round(fill_s, 1),
        "outbox_mb_filled": round(outbox_mb, 1),
        "complete": complete,
        "drain_s": None if drain_s is None else round(drain_s, 1),
        "drain_values_per_s": None if drain_s is None else round(options.samples / drain_s),
        "drain_from_first_batch_s": None if from_first_s is None else round(from_first_s, 1),
        "drain_values_per_s_from_first_batch": (
            None if not from_first_s else round(options.samples / from_first_s)
        ),
        "first_batch_after_start_s": (
            round(figures["first_batch_at"] - t_start, 1) if figures["first_batch_at"] else None
        ),
        "drained_gateway_view_s": None if t_drained is None else round(t_drained - t_start, 1),
        "met": drain_s is not None and drain_s <= TARGET_DRAIN_S,
        "live_during_drain": during,
        "live_after_drain": after,
        "live_kept_up": live_kept_up,
        "central": figures,
        "cpu_percent_during_drain": cpu_during,
        # The gateway's busiest threads over its life (start-up, drain, --after-s), % of a core.
        "gateway_threads_cpu_percent": [round(100 * s / (t_end - t_start), 1) for s in threads[:4]],
        "gateway_rss_mb_peak": round(gw_rss_peak / 2**20, 1),
        # This process (the counter's reader thread, /proc walks, scrapes) shares the cores too.
        "bench_cpu_percent": round(100 * (time.process_time() - own_cpu0) / (t_end - t_start), 1),
        "machine_load_1min_at_end": round(os.getloadavg()[0], 2),
        "drain_window_s": round(span, 1),
        "timeline": _timeline(watch, t_start),
    }


def run(options: Options, central_db_kind: str, workdir: Path) -> dict[str, Any]:
    folder = workdir / f"gw-{options.devices}"
    folder.mkdir()
    signing_key(folder)
    step = Step(options.devices, f"gw-{options.devices}", folder)
    # Everything the gateway receives from now on is live; everything in the backlog is older.
    boundary = time.time()
    with central_postgres(central_db_kind) as server:
        database = None if server is None else server.create_database()
        subscriber_args = ["--backlog-before", repr(boundary)]
        with _services(workdir, [step], database=database, subscriber_args=subscriber_args) as (
            broker,
            counter,
            others,
        ):
            if server is not None:
                others = {**others, "postgres": postmaster_pid(server)}
                central_db = CentralDb(pg=server, pg_name=str(database).rpartition("/")[2])
            else:
                central_db = CentralDb(sqlite_path=workdir / "central" / "central.db")
            dashboard_port = free_port()
            site_yaml = _site_yaml(step, broker, options.base_port, dashboard_port)
            result = _drain(options, step, counter, others, central_db, boundary, site_yaml, dashboard_port)
    return {"central_db": central_db_kind, **result}


def _save(path: Path, kind: str, result: dict[str, Any], options: Options) -> dict[str, Any]:
    """One entry per central database in the file; a run replaces its own."""
    doc: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(ValueError):
            doc = json.loads(path.read_text(encoding="utf-8"))
    runs: dict[str, Any] = doc.get("runs", {}) if isinstance(doc.get("runs"), dict) else {}
    # Earlier runs of the same size stay listed in brief: on a shared 2-core machine one run is
    # not the figure, the spread is.
    earlier = runs.get(kind)
    history: list[dict[str, Any]] = []
    if isinstance(earlier, dict) and (earlier.get("samples"), earlier.get("devices")) == (
        result["samples"],
        result["devices"],
    ):
        brief = {k: earlier.get(k) for k in ("measured_at", "drain_s", "drain_values_per_s")}
        brief["load"] = earlier.get("machine", {}).get("load")
        history = [*earlier.get("history", []), brief][-9:]
    runs[kind] = {
        **result,
        "history": history,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {
            "base_port": options.base_port,
            "after_s": options.after_s,
            "scrape_s": options.scrape_s,
        },
    }
    summary = {name: _summary(run) for name, run in sorted(runs.items())}
    doc = {
        "benchmark": "backlog_drain",
        "target": {"drain_s": TARGET_DRAIN_S, "samples": DEFAULT_SAMPLES, "devices": DEFAULT_DEVICES},
        "summary": summary,
        "runs": runs,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    during = run.get("live_during_drain", {})
    return {
        "samples": run.get("samples"),
        "devices": run.get("devices"),
        "drain_s": run.get("drain_s"),
        "drain_values_per_s": run.get("drain_values_per_s"),
        "met": run.get("met"),
        "polled_over_due": during.get("polled_over_due"),
        "live_age_p50_ms": during.get("age_ms", {}).get("p50"),
        "live_age_p99_ms": during.get("age_ms", {}).get("p99"),
        "live_kept_up": run.get("live_kept_up"),
        "drain_s_earlier_runs": [h.get("drain_s") for h in run.get("history", [])],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.backlog_drain")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    parser.add_argument("--devices", type=int, default=DEFAULT_DEVICES)
    parser.add_argument("--central-db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workdir", type=Path, help="keep every process's files and logs here")
    # Its own block of device ports (e2e_scale uses 12000+): both benches can run at once.
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("GH_BENCH_DRAIN_PORT", "14000")))
    parser.add_argument("--after-s", type=float, default=15.0, help="live figures after the drain, this long")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="give up on the drain after this")
    parser.add_argument("--scrape-s", type=float, default=1.0, help="read the gateway's /metrics this often")
    parser.add_argument("--py-spy", type=Path, help="folder for py-spy stacks of the gateway and central")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    options = Options(
        samples=args.samples,
        devices=args.devices,
        base_port=args.base_port,
        after_s=args.after_s,
        timeout_s=args.timeout_s,
        scrape_s=args.scrape_s,
        py_spy=args.py_spy,
    )
    with contextlib.ExitStack() as keep:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            workdir = args.workdir
        else:
            workdir = Path(keep.enter_context(tempfile.TemporaryDirectory(prefix="bench-drain-")))
        result = run(options, args.central_db, workdir)
    doc = _save(args.out, args.central_db, result, options)
    line = {"central_db": args.central_db, **doc["summary"][args.central_db]}
    print("backlog_drain:", json.dumps(line), flush=True)
    return doc


if __name__ == "__main__":
    main()
