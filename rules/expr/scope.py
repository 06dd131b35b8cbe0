"""What an expression may refer to, and the state it reads when evaluated.

``Scope`` is the compile-time view (which points and alarms exist, their zones and priorities);
``Env`` is the run-time view handed to compiled closures (current values, active alarms, now).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.model import Value

__all__ = ["AlarmMeta", "Env", "Scope", "site_alarm_key"]


def site_alarm_key(site: str, alarm_id: str) -> str:
    """Key of an alarm defined at site level without a point (a condition over several points)."""
    return f"{site}/_site/{alarm_id}"


@dataclass(frozen=True, slots=True)
class AlarmMeta:
    key: str
    point_id: str | None
    zone: str | None
    priority: str  # critical / high / medium / low
    klass: str | None  # fire / fault / supervisory, when the definition used a Chinese class


@dataclass(slots=True)
class Scope:
    site: str
    points: frozenset[str]
    alarms: dict[str, AlarmMeta] = field(default_factory=dict)
    device: str | None = None  # lets a point-level condition say ``level`` for its own device

    def in_device(self, device: str | None) -> Scope:
        return Scope(self.site, self.points, self.alarms, device)

    def point_id(self, parts: tuple[str, ...]) -> str | None:
        """``level`` (own device) or ``tank1.level`` → ``site/tank1/level``; ``None`` if malformed."""
        if len(parts) == 1 and self.device is not None:
            return f"{self.site}/{self.device}/{parts[0]}"
        if len(parts) == 2:
            return f"{self.site}/{parts[0]}/{parts[1]}"
        return None

    def alarm_keys(self, parts: tuple[str, ...]) -> list[str]:
        """Alarms named by a reference: a point (all its alarms), a point's alarm, or a site alarm."""
        prefixes: list[str] = []
        pid = self.point_id(parts)
        if pid is not None:
            prefixes.append(pid + "/")
        if len(parts) == 1:
            prefixes.append(site_alarm_key(self.site, parts[0]))
        if len(parts) == 3:
            prefixes.append(f"{self.site}/{parts[0]}/{parts[1]}/{parts[2]}")
        if len(parts) == 2 and self.device is not None:
            prefixes.append(f"{self.site}/{self.device}/{parts[0]}/{parts[1]}")
        return self._match(prefixes)

    def alarm_keys_by_id(self, text: str) -> list[str]:
        """A string reference: a full key (``site/dev/pt/alarm``), a point id, or dotted parts."""
        if "/" in text:
            return self._match([text, text.rstrip("/") + "/"])
        return self.alarm_keys(tuple(text.split(".")))

    def _match(self, prefixes: list[str]) -> list[str]:
        found: list[str] = []
        for key in self.alarms:
            for prefix in prefixes:
                # an enum alarm expands to one key per code: ``.../fault.5``
                if (
                    key == prefix
                    or (prefix.endswith("/") and key.startswith(prefix))
                    or key.startswith(prefix + ".")
                ):
                    found.append(key)
                    break
        return sorted(found)

    def select(
        self, zone: str | None, priority: str | None, klass: str | None, device: str | None
    ) -> list[str]:
        out = []
        for meta in self.alarms.values():
            if zone is not None and meta.zone != zone:
                continue
            if priority is not None and priority not in (meta.priority, meta.klass):
                continue
            if klass is not None and meta.klass != klass:
                continue
            if device is not None and (
                meta.point_id is None or not meta.point_id.startswith(f"{self.site}/{device}/")
            ):
                continue
            out.append(meta.key)
        return sorted(out)


class Env:
    """Run-time state read by compiled expressions. Bad-quality points are absent from ``values``."""

    __slots__ = ("active", "faults", "held", "now", "values")

    def __init__(self) -> None:
        # expression name -> what went wrong (overflow, NaN) in its last evaluation; the
        # engine turns these into events and clears them
        self.faults: dict[str, str] = {}
        self.values: dict[str, Value] = {}
        self.active: set[str] = set()  # keys of standing alarms
        self.held: dict[str, float] = {}  # since when each running hold has been true
        self.now: float = 0.0
