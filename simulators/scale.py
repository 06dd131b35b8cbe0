"""Scale mode for benchmarks: N devices of one family on consecutive ports (or unit ids).

``units_per_port=1`` gives N listening ports ``base_port .. base_port+N-1``, each answering unit
1; a larger value packs several unit ids behind each port (1..K), like TCP-to-RTU bridges.
All servers share one event loop and one ticker, so 500 devices fit in one process.
"""

from __future__ import annotations

from pathlib import Path

from simulators.profile import PROFILE_DIR, NotARegisterMap, SimProfile, load_profile_file
from simulators.site_plan import PlannedDevice

__all__ = ["plan_scale", "profile_for"]


def profile_for(name: str, dirs: tuple[Path, ...] = ()) -> SimProfile:
    """The profile called ``name``, or else the first profile (by id) of the family ``name``."""
    folders = (*dirs, PROFILE_DIR)
    for folder in folders:
        candidate = folder / f"{name}.yaml"
        if candidate.is_file():
            return load_profile_file(candidate)
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            try:
                profile = load_profile_file(path)
            except NotARegisterMap:
                continue
            if profile.family == name:
                return profile
    raise ValueError(f"no profile or family called '{name}'")


def plan_scale(
    name: str,
    count: int,
    base_port: int,
    *,
    host: str = "127.0.0.1",
    units_per_port: int = 1,
    id_prefix: str | None = None,
) -> list[PlannedDevice]:
    if count < 1:
        raise ValueError("count must be at least 1")
    if not 1 <= units_per_port <= 247:
        raise ValueError("units_per_port must be 1..247")
    last_port = base_port + (count - 1) // units_per_port
    if base_port < 1 or last_port > 65535:
        raise ValueError(f"ports {base_port}..{last_port} do not fit 1..65535")
    profile = profile_for(name)
    prefix = id_prefix or profile.family.replace("_", "-")
    return [
        PlannedDevice(
            id=f"{prefix}-{i + 1:04d}",
            profile=profile,
            endpoint=(host, base_port + i // units_per_port),
            unit=1 + i % units_per_port,
            bus=f"scale-{base_port + i // units_per_port}",
            seed=i,
        )
        for i in range(count)
    ]
