"""e2e_scale: what a user gets at the broker, N Modbus devices x 30 registers @ 1 s, measured outside.

Every part runs as deployed, each in its own process:

* the simulators (``bench.poll_scale_sim``: N Modbus TCP servers on consecutive ports, every
  register changing every second, the worst case for reporting and the outbox);
* the project's TLS Mosquitto (``tests.broker``: config/mosquitto, password auth, ACL);
* the real central (``gatehouse central``) verifying, storing into SQLite and signing the acks the
  gateway deletes on;
* the real gateway daemon (``gatehouse run``) at shipped settings (outbox, uplink and LAN dashboard
  defaults; the dashboard serves the ``/metrics`` the bench reads the poll counters from);
* a subscriber of its own (``bench.e2e_subscriber``) counting the values on the broker, decoding
  every batch with the real decoder.

Per device count, over a window after a warm-up: CPU per published value (the gateway's whole
process tree, from /proc), RSS (the tree, peak), the age of values at the broker (subscriber's
receive time minus the gateway's receipt time: p50/p99, first and last third), published/polled
(values counted at the broker over values the gateway polled, from its ``/metrics``), and the CPU
of the simulator, the broker, central and the counting subscriber (so the load generator is shown
not to be the limit; all of them share this machine's cores with the gateway). A step *kept up*
when the gateway polled ≥ 97 % of the values due, ≥ 97 % of those reached the broker and their
age did not grow over the window.

Run: ``python -m bench e2e_scale`` or ``python -m bench.e2e_scale [--counts 500,1000,1500,2000]
[--window-s 45] [--warmup-s 15] [--all]`` (``--all`` does not stop at the first step that falls
behind) [--central-db postgres] [--gateway-venv DIR|none]``. The gateway runs in a venv of the
project's runtime dependencies only (``.venv-runtime``, made on first use), as an installed
gateway would. Writes ``bench/results/e2e_scale.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ruamel.yaml import YAML

from bench.process_tree import tree_cpu_s, tree_pss, tree_rss
from cloud_sync.central.storage.local_pg import Postgres, start_postgres
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.keys import load_private_key, public_key_pem
from tests.broker import Broker, start_broker
from tests.integration.sync.helpers import CENTRAL_PUB_NAME, central_signing_key, signing_key
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_VENV = ROOT / ".venv-runtime"
RESULTS = Path(__file__).resolve().parent / "results" / "e2e_scale.json"
PROFILES = Path(__file__).resolve().parent / "profiles"
POINTS_PER_DEVICE = 30
KEPT_UP_SHARE = 0.97
# The age "grows" when the last third of the window is this much older than the first third.
AGE_GROWTH_S = 0.5
TARGETS = {
    "devices_kept_up": 2000,
    "p99_age_ms": 1000,
    "cpu_us_per_tag_at_500": 20,
    "rss_mb_at_500": 80,
    "rss_mb_at_2000": 160,
}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def central_postgres(kind: str) -> Iterator[Postgres | None]:
    """A private PostgreSQL for central when ``kind`` is ``postgres`` (else None: SQLite)."""
    if kind != "postgres":
        yield None
        return
    # As deployed (and as `make demo DEMO_ARGS=--postgres`): fsync on.
    with start_postgres(durable=True) as server:
        yield server


def postmaster_pid(server: Postgres) -> int:
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])


def runtime_python(venv: Path | None) -> str:
    """The interpreter the gateway runs on. With ``venv``: a venv holding only the project's
    runtime dependencies (what ``pip install gatehouse`` brings), not the development venv, whose
    test tools make structlog import rich, pygments, twisted and greenlet (about 7 MB of RSS no
    installed gateway has). Made on first use and again when pyproject.toml changes; the tree's
    own code comes first on the path (``_gateway_env``)."""
    if venv is None:
        return sys.executable
    python = venv / "bin" / "python"
    pyproject = (ROOT / "pyproject.toml").read_text()
    stamp = venv / "pyproject.stamp"
    if not python.exists() or not stamp.exists() or stamp.read_text() != pyproject:
        print(f"e2e_scale: making the runtime venv {venv} (the project's dependencies, no dev extras)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        dependencies = tomllib.loads(pyproject)["project"]["dependencies"]
        subprocess.run([str(python), "-m", "pip", "install", "-q", *dependencies], check=True)
        stamp.write_text(pyproject)
    return str(python)


def _gateway_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _popen(args: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)


def _stop(proc: subprocess.Popen[Any], timeout_s: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


def _wait(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


# -- the counting subscriber ------------------------------------------------------------------
@dataclass
class Counter:
    """Reads the subscriber's per-second lines on a thread; ``lines(gw)`` hands them out."""

    proc: subprocess.Popen[bytes]
    inbox: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    seen: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> None:
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        first = stdout.readline()
        if first.strip() != b"ready":
            raise RuntimeError(f"the counting subscriber did not start: {first!r}")
        threading.Thread(target=self._read, args=(stdout,), name="e2e-counter", daemon=True).start()

    def _read(self, stdout: IO[bytes]) -> None:
        for raw in stdout:
            self.inbox.put(json.loads(raw))

    def drain(self) -> None:
        while True:
            try:
                self.seen.append(self.inbox.get_nowait())
            except queue.Empty:
                return

    def lines(self, gw: str, t0: float, t1: float) -> list[dict[str, Any]]:
        self.drain()
        return [x for x in self.seen if x["gw"] == gw and t0 < x["t"] <= t1]

    def heard(self, gw: str) -> bool:
        self.drain()
        return any(x["gw"] == gw for x in self.seen)


# -- files ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    count: int
    gw: str
    folder: Path
    poll_workers: int = 0  # gateway.poll_workers (0: shipped default, polling in-process)
    buses: int = 1  # the devices spread over this many buses (poll workers take whole buses)
    python: str = sys.executable  # the gateway's interpreter (``runtime_python``)


def _central_yaml(folder: Path, broker: Broker, steps: list[Step], database: str | None = None) -> Path:
    """Central's config; ``database`` a postgresql:// URL, or None for a SQLite file in ``folder``."""
    user, password = broker.credentials(CENTRAL_USER)
    gateways = []
    for step in steps:
        key = load_private_key(step.folder / "signing.key")
        gateways.append({"id": step.gw, "keys": [{"pem": public_key_pem(key.public_key())}]})
    config = {
        "database": database or str(folder / "central.db"),
        "signing_key": str(central_signing_key(folder)),
        "broker": {
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "client_id": "central-bench",
        },
        "api": {"host": "127.0.0.1", "port": free_port(), "tokens": [{"name": "bench", "token": "bench"}]},
        "gateways": gateways,
    }
    path = folder / "central.yaml"
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(config, fh)
    return path


def _site_yaml(step: Step, broker: Broker, base_port: int, dashboard_port: int) -> Path:
    creds = broker.clients[step.gw]
    site = {
        "site": {"id": "bench"},
        "gateway": {"id": step.gw, "data_dir": "data", "poll_workers": step.poll_workers},
        "profile_dirs": [str(PROFILES)],
        "buses": [
            {"id": f"lan{n}", "type": "modbus_tcp", "host": "127.0.0.1", "port": base_port}
            for n in range(step.buses)
        ],
        "devices": [
            {
                "id": f"b{i:04d}",
                "bus": f"lan{i % step.buses}",
                "port": base_port + i,
                "unit": 1,
                "profile": "bench-30hr",
            }
            for i in range(step.count)
        ],
        # Shipped settings: only what has no default (where the broker is, who the gateway is).
        "uplink": {
            "broker_host": broker.host,
            "broker_port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": creds.name,
            "password_file": str(creds.password_path),
            "signing_key": "signing.key",
            "central_key": CENTRAL_PUB_NAME,
        },
        "dashboard": {"listen": f"127.0.0.1:{dashboard_port}"},
    }
    path = step.folder / "site.yaml"
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(site, fh)
    return path


@dataclass(frozen=True)
class Probe:
    """Optional looks inside the gateway (they cost CPU and memory: not for the headline runs)."""

    memory_dir: Path | None = None  # tracemalloc breakdown (bench.memory_probe)
    py_spy_dir: Path | None = None  # sampled stacks (py-spy)


# -- one step ---------------------------------------------------------------------------------
def _scrape(port: int) -> dict[str, float]:
    """The few families the bench needs from the gateway's ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:  # noqa: S310
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("gatehouse_bus_polls_total{", "gatehouse_outbox_", "gatehouse_uplink_")):
            name, _, value = line.rpartition(" ")
            out[name] = out.get(name, 0.0) + float(value)
    return out


def _polls_ok(metrics: dict[str, float]) -> float:
    ok = [v for k, v in metrics.items() if k.startswith("gatehouse_bus_polls_total{") and 'result="ok"' in k]
    return sum(ok)


_RECORDS_SENT = 'gatehouse_uplink_events_total{counter="records_sent"}'


def _metric(metrics: dict[str, float], prefix: str) -> float | None:
    found = [v for k, v in metrics.items() if k.startswith(prefix)]
    return sum(found) if found else None


def _run_step(
    step: Step,
    *,
    broker: Broker,
    counter: Counter,
    others: dict[str, int],
    warmup_s: float,
    window_s: float,
    base_port: int,
    probe: Probe,
) -> dict[str, Any]:
    logs = step.folder
    dashboard_port = free_port()
    site = _site_yaml(step, broker, base_port, dashboard_port)
    sim = subprocess.Popen(
        [sys.executable, "-m", "bench.poll_scale_sim", "--count", str(step.count)]
        + ["--base-port", str(base_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    gateway: subprocess.Popen[bytes] | None = None
    try:
        assert sim.stdout is not None
        if sim.stdout.readline().strip() != b"ready":
            raise RuntimeError("the simulator process did not start")
        command = ["run", "--config", str(site), "--log-level", "warning"]
        if probe.memory_dir is not None:
            out = probe.memory_dir / f"memory-{step.count}.json"
            after = str(warmup_s + window_s / 2)
            command = ["-m", "bench.memory_probe", "--after-s", after, "--out", str(out), "--", *command]
        else:
            command = ["-m", "edge", *command]
        gateway = _popen([step.python, *command], logs / "gateway.log", env=_gateway_env())
        gw_proc = gateway
        _wait(lambda: gw_proc.poll() is not None or counter.heard(step.gw), 120, f"{step.gw}'s first values")
        if gateway.poll() is not None:
            raise RuntimeError((logs / "gateway.log").read_text()[-3000:])
        time.sleep(warmup_s)  # a measurement window, not synchronisation: let start-up settle
        pids = {"simulator": sim.pid, **others}
        spy = None
        if probe.py_spy_dir is not None:
            # Sampled stacks of the gateway over the window (py-spy, collapsed format).
            out = probe.py_spy_dir / f"py-spy-{step.count}.txt"
            spy = subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(gateway.pid), "-d"]
                + [str(int(window_s)), "-r", "50", "-f", "raw", "-o", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        m0 = _scrape(dashboard_port)
        cpu0 = tree_cpu_s(gateway.pid)
        other0 = {name: tree_cpu_s(pid) for name, pid in pids.items()}
        t0 = time.time()
        rss: list[int] = []
        pss: list[int] = []
        while time.time() - t0 < window_s:
            time.sleep(1.0)
            rss.append(tree_rss(gateway.pid))
            if len(rss) % 10 == 1:  # reading smaps costs the reader: every 10 s is enough
                pss.append(tree_pss(gateway.pid))
            if gateway.poll() is not None:
                raise RuntimeError((logs / "gateway.log").read_text()[-3000:])
        m1 = _scrape(dashboard_port)
        t1 = time.time()
        cpu = tree_cpu_s(gateway.pid) - cpu0
        other = {name: round(tree_cpu_s(pid) - other0[name], 2) for name, pid in pids.items()}
        if spy is not None:
            spy.wait(60)
        # Values published inside the window may still be on their way to the subscriber.
        time.sleep(2.0)
        lines = counter.lines(step.gw, t0, t1)
    finally:
        if gateway is not None:
            _stop(gateway)
        _stop(sim)
    elapsed = t1 - t0
    published = sum(x["n"] for x in lines)
    polled = (_polls_ok(m1) - _polls_ok(m0)) * POINTS_PER_DEVICE
    ages = [a for x in lines for a in x["ages"]]
    third = elapsed / 3
    early = [a for x in lines if x["t"] <= t0 + third for a in x["ages"]]
    late = [a for x in lines if x["t"] > t1 - third for a in x["ages"]]
    growth = statistics.median(late) - statistics.median(early) if early and late else float("nan")
    ratio = published / polled if polled else 0.0
    due = step.count * POINTS_PER_DEVICE * elapsed
    kept_up = polled >= KEPT_UP_SHARE * due and ratio >= KEPT_UP_SHARE and growth <= AGE_GROWTH_S
    rows0 = _metric(m0, 'gatehouse_outbox_rows{lane="telemetry"}')
    rows1 = _metric(m1, 'gatehouse_outbox_rows{lane="telemetry"}')
    sent = (_metric(m1, _RECORDS_SENT) or 0.0) - (_metric(m0, _RECORDS_SENT) or 0.0)
    bytes0 = _metric(m0, "gatehouse_outbox_used_bytes")
    bytes1 = _metric(m1, "gatehouse_outbox_used_bytes")
    return {
        "devices": step.count,
        "window_s": round(elapsed, 1),
        "tags_due_per_s": step.count * POINTS_PER_DEVICE,
        "polled_per_s": round(polled / elapsed),
        "published_per_s": round(published / elapsed),
        "polled_over_due": round(polled / due, 3),
        "published_over_polled": round(ratio, 3),
        "gateway_sent_per_s": round(sent / elapsed),
        "cpu_us_per_published_tag": round(cpu * 1e6 / published, 2) if published else None,
        "gateway_cpu_percent": round(100 * cpu / elapsed, 1),
        "rss_mb_peak": round(max(rss) / 2**20, 1) if rss else None,
        "rss_mb_mean": round(statistics.fmean(rss) / 2**20, 1) if rss else None,
        "pss_mb_mean": round(statistics.fmean(pss) / 2**20, 1) if pss else None,
        "age_ms": {
            "p50": round(_percentile(ages, 0.5) * 1000),
            "p99": round(_percentile(ages, 0.99) * 1000),
            "mean": round(statistics.fmean(ages) * 1000) if ages else None,
            "p50_first_third": round(statistics.median(early) * 1000) if early else None,
            "p50_last_third": round(statistics.median(late) * 1000) if late else None,
        },
        "age_growth_s": round(growth, 3),
        "outbox_telemetry_rows": [rows0, rows1],
        "outbox_growth_mb_per_s": (
            None if bytes0 is None or bytes1 is None else round((bytes1 - bytes0) / 2**20 / elapsed, 3)
        ),
        "cpu_percent_others": {name: round(100 * s / elapsed, 1) for name, s in other.items()},
        "machine_load_1min": round(os.getloadavg()[0], 2),
        "kept_up": kept_up,
    }


@contextlib.contextmanager
def _services(
    workdir: Path, steps: list[Step], *, database: str | None = None, subscriber_args: Sequence[str] = ()
) -> Iterator[tuple[Broker, Counter, dict[str, int]]]:
    """Broker, central (SQLite, or ``database``) and the counting subscriber (``subscriber_args``
    added to its command line); yields them with the pids of the processes to measure."""
    broker = start_broker(workdir / "mq", gateways=[s.gw for s in steps])
    central: subprocess.Popen[bytes] | None = None
    sub: subprocess.Popen[bytes] | None = None
    try:
        (workdir / "central").mkdir()
        central_cfg = _central_yaml(workdir / "central", broker, steps, database)
        central_log = workdir / "central.log"
        central = _popen(
            [sys.executable, "-m", "edge", "central", "--config", str(central_cfg), "--log-level", "info"],
            central_log,
        )
        running = central
        _wait(
            lambda: (
                running.poll() is not None or "mqtt subscribed" in central_log.read_text(errors="replace")
            ),
            60,
            "central subscribed",
        )
        if central.poll() is not None:
            raise RuntimeError(central_log.read_text()[-3000:])
        creds = broker.clients[CENTRAL_USER]
        sub = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.e2e_subscriber",
                "--port",
                str(broker.port),
                "--ca-file",
                str(broker.ca_path),
                "--username",
                creds.name,
                "--password-file",
                str(creds.password_path),
                *subscriber_args,
            ],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        counter = Counter(sub)
        counter.start()
        assert broker.process is not None
        yield broker, counter, {"broker": broker.process.pid, "central": central.pid, "counter": sub.pid}
    finally:
        for proc in (sub, central):
            if proc is not None:
                _stop(proc)
        broker.stop()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.e2e_scale")
    parser.add_argument("--counts", default="500,1000,1500,2000")
    parser.add_argument("--window-s", type=float, default=45.0)
    parser.add_argument("--warmup-s", type=float, default=15.0)
    parser.add_argument("--all", action="store_true", help="measure every count even after one fell behind")
    # The devices' block of ports lies outside core.ports' range (20000-32000), where the bench
    # picks its other ports, and below the kernel's ephemeral range.
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("GH_BENCH_PORT", "12000")))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--memory", type=Path, help="folder for tracemalloc breakdowns (memory-N.json)")
    parser.add_argument("--py-spy", type=Path, help="folder for py-spy stacks (py-spy-N.txt)")
    parser.add_argument(
        "--poll-workers", type=int, default=0, help="gateway.poll_workers (default 0: in-process polling)"
    )
    parser.add_argument("--buses", type=int, default=1, help="spread the devices over this many buses")
    parser.add_argument("--workdir", type=Path, help="keep every process's files and logs here")
    parser.add_argument("--central-db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--gateway-venv",
        default=str(RUNTIME_VENV),
        help="run the gateway in this runtime-only venv (made on first use; 'none': the bench's own)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    python = runtime_python(None if args.gateway_venv == "none" else Path(args.gateway_venv))
    counts = [int(c) for c in args.counts.split(",") if c]
    for folder in filter(None, (args.memory, args.py_spy)):
        folder.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as keep:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            workdir = args.workdir
        else:
            workdir = Path(keep.enter_context(tempfile.TemporaryDirectory(prefix="bench-e2e-")))
        steps = []
        for count in counts:
            folder = workdir / f"gw-{count}"
            folder.mkdir()
            signing_key(folder)
            steps.append(Step(count, f"gw-{count}", folder, args.poll_workers, args.buses, python))
        server = keep.enter_context(central_postgres(args.central_db))
        database = None if server is None else server.create_database()
        with _services(workdir, steps, database=database) as (broker, counter, others):
            if server is not None:
                others = {**others, "postgres": postmaster_pid(server)}
            for step in steps:
                result = _run_step(
                    step,
                    broker=broker,
                    counter=counter,
                    others=others,
                    warmup_s=args.warmup_s,
                    window_s=args.window_s,
                    base_port=args.base_port,
                    probe=Probe(args.memory, args.py_spy),
                )
                print(json.dumps(result), flush=True)
                runs.append(result)
                if not result["kept_up"] and not args.all:
                    break
    kept = [r for r in runs if r["kept_up"]]
    by_count = {r["devices"]: r for r in runs}
    first = runs[0] if runs else {}
    summary = {
        "largest_devices_kept_up": max((r["devices"] for r in kept), default=0),
        "largest_published_per_s_kept_up": max((r["published_per_s"] for r in kept), default=0),
        f"cpu_us_per_published_tag_at_{first.get('devices')}": first.get("cpu_us_per_published_tag"),
        f"rss_mb_at_{first.get('devices')}": first.get("rss_mb_peak"),
        f"age_p50_ms_at_{first.get('devices')}": first.get("age_ms", {}).get("p50"),
        f"age_p99_ms_at_{first.get('devices')}": first.get("age_ms", {}).get("p99"),
        "polled_over_due": {str(c): r["polled_over_due"] for c, r in by_count.items()},
        "published_over_polled": {str(c): r["published_over_polled"] for c, r in by_count.items()},
    }
    result = {
        "benchmark": "e2e_scale",
        "targets": TARGETS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "settings": {
            "window_s": args.window_s,
            "warmup_s": args.warmup_s,
            "points": POINTS_PER_DEVICE,
            "poll_workers": args.poll_workers,
            "buses": args.buses,
            "central_db": args.central_db,
            "gateway_python": python,
        },
        "summary": summary,
        "runs": runs,
    }
    print("e2e_scale summary:", json.dumps(summary), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
