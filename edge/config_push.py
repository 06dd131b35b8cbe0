"""A whole site file pushed by central (``config.push``, docs/protocol.md §12): check, apply,
watch, and roll back on its own if the new configuration does not come up healthy.

1. The text is written beside the site file and loaded exactly as ``gatehouse check`` does;
   any problem refuses the push with the ``line:col: field: message`` lines, and nothing changes.
2. The running file is kept as ``site.yaml.previous`` and the new one put in place with an atomic
   rename; the daemon reloads it (``Gateway.reload``).
3. Healthy means, within ``health_s``: the new site runs, every enabled device that answered
   under the old configuration answers again (at least one device, if none did before), and the
   uplink, when the new site has one, is connected.
4. Otherwise the previous file goes back, the daemon reloads it, and the command fails with what
   was not healthy.

``DATA_DIR/config-version.json`` holds the version running now, the previous one, and when it
was applied (``gatehouse buffer stats`` and the health page read it; the uplink's state message
reports it to central). A push's trial is in that record too (``"trial": true``): a daemon that
restarts during a trial — killed, or crashed by the new file — finds it and puts the previous
file back before loading (:func:`recover_interrupted_push`), so a bad push cannot keep a gateway
down.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import structlog

from core.errors import ConfigError
from edge.config.loader import load_site
from edge.config.site import Site

__all__ = ["VERSION_FILE", "ConfigPush", "PushOutcome", "read_version", "recover_interrupted_push"]

_LOG = structlog.get_logger(__name__)
VERSION_FILE = "config-version.json"
_POLL_S = 0.2


class PushOutcome:
    def __init__(self, ok: bool, detail: str, *, refused: bool = False) -> None:
        self.ok = ok
        self.refused = refused
        self.detail = detail


def read_version(data_dir: Path) -> dict[str, Any]:
    try:
        raw = json.loads((Path(data_dir) / VERSION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _write_version(data_dir: Path, record: dict[str, Any]) -> None:
    path = Path(data_dir) / VERSION_FILE
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _previous_path(site_path: Path) -> Path:
    return site_path.with_name(site_path.name + ".previous")


def recover_interrupted_push(site_path: Path, data_dir: Path) -> bool:
    """Before the daemon loads its site: undo a push whose trial never finished. True if undone."""
    record = read_version(data_dir)
    previous = _previous_path(site_path)
    if not record.get("trial") or not previous.is_file():
        return False
    os.replace(previous, site_path)
    record.update(trial=False, version=record.get("previous_version"), rolled_back_at=time.time())
    _write_version(data_dir, record)
    _LOG.error("config push interrupted during its trial; previous site file restored", path=str(site_path))
    return True


class ConfigPush:
    """Applies pushed site files to a running gateway (``edge.app.Gateway``), one at a time."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway
        self._lock = asyncio.Lock()

    async def apply(self, text: str, version: str, health_s: float, *, by: str) -> PushOutcome:
        async with self._lock:
            return await self._apply(text, version, health_s, by=by)

    async def _apply(self, text: str, version: str, health_s: float, *, by: str) -> PushOutcome:
        gateway = self._gateway
        old: Site = gateway.site
        site_path, data_dir = Path(old.path), Path(old.data_dir)
        was_online = {d for d, up in gateway.live.device_online.items() if up}
        checked = await asyncio.to_thread(_check_candidate, site_path, data_dir, text)
        if isinstance(checked, PushOutcome):
            return checked
        previous_version = await asyncio.to_thread(_install, site_path, data_dir, checked, version, by)
        new = await asyncio.to_thread(load_site, site_path)
        gateway.reload(new)
        problem = await self._healthy(new, was_online, health_s)
        if problem is None:
            await asyncio.to_thread(_end_trial, data_dir)
            _LOG.info("config push applied", version=version, by=by)
            return PushOutcome(True, f"version {version} running")
        restored = await asyncio.to_thread(_roll_back, site_path, data_dir, previous_version, version)
        gateway.reload(restored)
        await self._healthy(restored, was_online, health_s)
        _LOG.error("config push rolled back", version=version, problem=problem)
        return PushOutcome(False, f"rolled back to the previous configuration: {problem}")

    async def _healthy(self, site: Site, was_online: set[str], health_s: float) -> str | None:
        """None once ``site`` runs healthily; else, after ``health_s``, what is wrong."""
        deadline = time.monotonic() + health_s
        while True:
            problem = self._problem(site, was_online)
            if problem is None:
                return None
            if time.monotonic() >= deadline:
                return f"not healthy within {health_s:g} s: {problem}"
            await asyncio.sleep(_POLL_S)

    def _problem(self, site: Site, was_online: set[str]) -> str | None:
        gateway = self._gateway
        if gateway.site is not site or gateway.devices is None:
            return "the new site has not started"
        enabled = [d.id for d in site.devices if d.config.enabled]
        online = gateway.live.device_online
        answered_before = [d for d in enabled if d in was_online]
        if answered_before:
            silent = sorted(d for d in answered_before if not online.get(d))
            if silent:
                return f"devices not answering: {', '.join(silent[:10])}"
        elif enabled and not any(online.get(d) for d in enabled):
            return "no device has answered"
        if site.config.uplink:
            uplink = gateway.uplink
            if uplink is None or not uplink.status().get("connected"):
                return "uplink not connected"
        return None


def _check_candidate(site_path: Path, data_dir: Path, text: str) -> Path | PushOutcome:
    """Write the pushed text beside the site file and load it as `gatehouse check` does."""
    candidate = site_path.with_name(f".push-{os.getpid()}-{site_path.name}")
    candidate.write_text(text, encoding="utf-8")
    try:
        new = load_site(candidate)
    except ConfigError as exc:
        candidate.unlink(missing_ok=True)
        lines = [f"{p.line}:{p.column}: {p.path}: {p.message}" for p in exc.problems]
        return PushOutcome(False, "site file refused: " + "; ".join(lines)[:1500], refused=True)
    if Path(new.data_dir).resolve() != data_dir.resolve():
        candidate.unlink(missing_ok=True)
        return PushOutcome(False, "a push may not move gateway.data_dir", refused=True)
    return candidate


def _install(site_path: Path, data_dir: Path, candidate: Path, version: str, by: str) -> Any:
    """Keep the running file as .previous, record the trial, put the candidate in place."""
    previous_version = read_version(data_dir).get("version")
    _copy(site_path, _previous_path(site_path))
    record = {"version": version, "previous_version": previous_version, "by": by, "trial": True}
    _write_version(data_dir, {**record, "applied_at": time.time()})
    os.replace(candidate, site_path)
    return previous_version


def _end_trial(data_dir: Path) -> None:
    _write_version(data_dir, {**read_version(data_dir), "trial": False})


def _roll_back(site_path: Path, data_dir: Path, previous_version: Any, rejected: str) -> Site:
    os.replace(_previous_path(site_path), site_path)
    record = {"version": previous_version, "previous_version": previous_version, "rejected_version": rejected}
    _write_version(data_dir, {**record, "applied_at": time.time(), "trial": False})
    return load_site(site_path)


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_suffix(dst.suffix + ".tmp")
    tmp.write_bytes(src.read_bytes())
    os.replace(tmp, dst)
