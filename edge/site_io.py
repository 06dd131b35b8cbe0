"""Buses, devices and points of a site file as one CSV sheet, and back (R5.2).

One row per record; the ``kind`` column says which (``bus``, ``device``, ``point``). A device
row names its ``bus``; a point row names its ``device`` and follows it. Every other column is a
key of the site file, and which keys exist is asked of the driver registry: the bus and device
models of every registered bus type (``drivers.registry.bus_drivers()``) and the point patch
model a device model declares for its ``points``. No protocol is named here.

Cells: an empty cell is an absent key. A text field holds its text as is; any other value is
JSON (``502``, ``0.5``, ``true``, ``[1, 2]``, ``{"hi": 3}``), which is also YAML, so nothing is
lost in a round trip. A cell a spreadsheet would run as a formula (it starts with ``=``, ``+``,
``-`` or ``@``) is written with a leading ``'`` and read back without it. Import reads UTF-8
(with or without the BOM Excel writes) and GB18030.

:func:`import_rows` returns the ``buses`` and ``devices`` lists, or raises ``CsvError`` whose
problems name the CSV row (1-based, header = row 1) and column, including those the site loader
finds once the sheet is merged into the site file (``devices[3].unit`` → the row of that device,
column ``unit``).
"""

from __future__ import annotations

import csv
import io
import json
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError, ConfigProblem, GatehouseError
from drivers.registry import bus_drivers
from edge.dashboard.csv_cells import safe_cell, unescape_cell

__all__ = [
    "CsvError",
    "CsvProblem",
    "columns",
    "decode_csv",
    "export_rows",
    "export_site_file",
    "import_rows",
    "locate_problems",
]

KINDS = ("bus", "device", "point")
_LEAD = ("kind", "id", "bus", "device", "type")


@dataclass(frozen=True, slots=True)
class CsvProblem:
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.message}"


class CsvError(GatehouseError):
    def __init__(self, problems: list[CsvProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems[:5]))


def _point_model(device_model: type[Any]) -> type[Any] | None:
    annotation = device_model.model_fields["points"].annotation
    for arg in typing.get_args(annotation):
        if hasattr(arg, "model_fields"):
            return typing.cast("type[Any]", arg)
    return None


def _models() -> dict[str, tuple[type[Any], type[Any], type[Any] | None]]:
    """bus type → (bus model, device model, point patch model)."""
    return {t: (d.bus_model, d.device_model, _point_model(d.device_model)) for t, d in bus_drivers().items()}


def columns() -> list[str]:
    """Every column, lead columns first, then bus, device and point keys in registry order."""
    out = list(_LEAD)
    for bus_model, device_model, point_model in _models().values():
        for model in (bus_model, device_model, point_model):
            if model is None:
                continue
            for name in model.model_fields:
                if name not in out and name != "points":
                    out.append(name)
    return out


def _is_text(model: type[Any] | None, key: str) -> bool:
    """True if the field takes text only (so ``007`` stays ``"007"``)."""
    if model is None or key not in model.model_fields:
        return False
    annotation = model.model_fields[key].annotation
    args = set(typing.get_args(annotation)) if isinstance(annotation, types.UnionType) else {annotation}
    args.discard(type(None))
    return bool(args) and all(a is str or typing.get_origin(a) is typing.Literal for a in args)


def _encode(value: Any) -> str:
    # A text a spreadsheet would run as a formula (a name typed as ``=HYPERLINK(...)``) is
    # quoted; the import takes the quote off again (``edge.dashboard.csv_cells``).
    if isinstance(value, str):
        return str(safe_cell(value))
    return str(safe_cell(json.dumps(_plain(value), ensure_ascii=False)))


def _plain(value: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def export_rows(buses: Sequence[Any], devices: Sequence[Any]) -> str:
    """The CSV text (UTF-8 with BOM is for the writer to add) of a site's buses and devices."""
    cols = columns()
    extra: list[str] = []
    records: list[dict[str, str]] = []
    for bus in buses:
        records.append({"kind": "bus", **{str(k): _encode(v) for k, v in bus.items()}})
    for device in devices:
        row = {"kind": "device", **{str(k): _encode(v) for k, v in device.items() if k != "points"}}
        records.append(row)
        for point in device.get("points") or []:
            p = {str(k): _encode(v) for k, v in point.items()}
            records.append({**p, "kind": "point", "device": _encode(str(device["id"]))})
    for record in records:
        for key in record:
            if key not in cols and key not in extra:
                extra.append(key)  # a key no model knows: kept, so the loader can report it
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=cols + extra, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def export_site_file(path: Path) -> bytes:
    """The sheet of a site file as the bytes to save: UTF-8 with the BOM Excel needs for Chinese.

    Read with a round-trip YAML loader (as the import writes it), so values keep the types and
    spelling of the file. ``gatehouse export devices`` and the dashboard's download both use it.
    Raises ``OSError`` when the file cannot be read and ``ConfigError`` when it is not YAML.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML()
    yaml.preserve_quotes = True
    try:
        with path.open(encoding="utf-8") as fh:
            doc = yaml.load(fh)
    except YAMLError as exc:
        raise ConfigError([ConfigProblem(str(path), 1, 1, "(file)", f"not valid YAML: {exc}")]) from exc
    if not hasattr(doc, "get"):
        doc = {}
    text = export_rows(list(iter_raw(doc, "buses")), list(iter_raw(doc, "devices")))
    return ("\ufeff" + text).encode("utf-8")


def decode_csv(raw: bytes) -> str:
    """UTF-8 (BOM or not), else GB18030 (Excel on a Chinese Windows)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw[3:].decode("utf-8")
        except UnicodeDecodeError as exc:  # a BOM, then bytes that are not UTF-8 (found by tests/fuzz)
            row = raw[: exc.start + 3].count(b"\n") + 1
            raise CsvError([CsvProblem(row, "-", f"marked UTF-8 but is not: {exc.reason}")]) from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise CsvError([CsvProblem(1, "-", f"neither UTF-8 nor GB18030 text: {exc.reason}")]) from exc


_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def _decode(cell: str, model: type[Any] | None, key: str, row: int, problems: list[CsvProblem]) -> Any:
    if _is_text(model, key):
        return cell
    text = cell.strip()
    try:
        return json.loads(text)
    except ValueError:
        if text.startswith(("[", "{")) or _NUMBER.match(text):
            problems.append(CsvProblem(row, key, f"not valid JSON: {text[:40]!r}"))
            return None
        return cell  # plain text in a field that takes text or more (a profile name, a host)


@dataclass
class Imported:
    buses: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    # where each record came from: ("buses", i) / ("devices", i) / ("devices", i, "points", j) → row
    rows: dict[tuple[Any, ...], int]


def import_rows(text: str) -> Imported:
    """Parse the sheet; raises ``CsvError`` naming every row and column at fault."""
    parser = csv.reader(io.StringIO(text))
    try:
        reader = iter(list(parser))
    except csv.Error as exc:  # e.g. a lone carriage return in an unquoted cell (found by tests/fuzz)
        raise CsvError([CsvProblem(parser.line_num, "-", f"not a valid CSV sheet: {exc}")]) from exc
    try:
        header = next(reader)
    except StopIteration:
        raise CsvError([CsvProblem(1, "-", "the file is empty")]) from None
    header = [h.strip() for h in header]
    problems: list[CsvProblem] = []
    if "kind" not in header or "id" not in header:
        raise CsvError([CsvProblem(1, "kind" if "kind" not in header else "id", "missing column")])
    known = set(columns())
    for name in header:
        if name and name not in known:
            problems.append(CsvProblem(1, name, "unknown column (no bus type has this key)"))
    models = _models()
    buses: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    rows: dict[tuple[Any, ...], int] = {}
    bus_types: dict[str, str] = {}
    device_index: dict[str, int] = {}
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            problems.append(CsvProblem(number, "-", f"{len(cells)} cells but {len(header)} columns"))
            continue
        row = {h: unescape_cell(c) for h, c in zip(header, cells, strict=False) if h and c != ""}
        kind = row.pop("kind", "").strip()
        if kind not in KINDS:
            problems.append(CsvProblem(number, "kind", f"{kind!r}: expected bus, device or point"))
            continue
        if not row.get("id", "").strip():
            problems.append(CsvProblem(number, "id", "missing"))
            continue
        if kind == "bus":
            bus_type = row.get("type", "").strip()
            if bus_type not in models:
                problems.append(CsvProblem(number, "type", f"{bus_type!r}: no driver for this bus type"))
                continue
            model = models[bus_type][0]
            _only(row, model, number, problems, allowed={"id", "type"})
            rec = {k: _decode(v, model, k, number, problems) for k, v in row.items()}
            bus_types[row["id"]] = bus_type
            rows[("buses", len(buses))] = number
            buses.append(rec)
        elif kind == "device":
            bus_id = row.get("bus", "").strip()
            if bus_id not in bus_types:
                problems.append(CsvProblem(number, "bus", f"{bus_id!r}: no bus row with this id above"))
                continue
            model = models[bus_types[bus_id]][1]
            _only(row, model, number, problems, allowed={"id", "bus"})
            if row["id"] in device_index:
                problems.append(CsvProblem(number, "id", f"device {row['id']!r} appears twice"))
                continue
            rec = {k: _decode(v, model, k, number, problems) for k, v in row.items()}
            device_index[row["id"]] = len(devices)
            rows[("devices", len(devices))] = number
            devices.append(rec)
        else:
            owner = row.pop("device", "").strip()
            if owner not in device_index:
                problems.append(CsvProblem(number, "device", f"{owner!r}: no device row with this id above"))
                continue
            dev = devices[device_index[owner]]
            pmodel = models[bus_types[dev["bus"]]][2]
            if pmodel is not None:
                _only(row, pmodel, number, problems, allowed={"id"})
            rec = {k: _decode(v, pmodel, k, number, problems) for k, v in row.items()}
            points = dev.setdefault("points", [])
            rows[("devices", device_index[owner], "points", len(points))] = number
            points.append(rec)
    if problems:
        raise CsvError(problems)
    return Imported(buses, devices, rows)


def _only(
    row: dict[str, str], model: type[Any], number: int, problems: list[CsvProblem], allowed: set[str]
) -> None:
    for key in list(row):
        if key not in model.model_fields and key not in allowed:
            problems.append(CsvProblem(number, key, f"not a key of this {model.__name__}"))
            del row[key]


_PATH = re.compile(r"^(buses|devices)\[(\d+)\](?:\.points\[(\d+)\])?(?:\.([A-Za-z_][\w]*))?")


def locate_problems(error: ConfigError, imported: Imported) -> tuple[list[CsvProblem], list[ConfigProblem]]:
    """Split the loader's problems into those of CSV rows (row, column) and the rest."""
    located: list[CsvProblem] = []
    other: list[ConfigProblem] = []
    for problem in error.problems:
        match = _PATH.match(problem.path)
        key: tuple[Any, ...] | None = None
        if match:
            section, index, point, field = match.groups()
            key = (section, int(index)) if point is None else (section, int(index), "points", int(point))
        if key is not None and key in imported.rows:
            located.append(CsvProblem(imported.rows[key], field or "id", problem.message))
        else:
            other.append(problem)
    return located, other


def merge_into(doc: Any, imported: Imported) -> None:
    """Replace the ``buses:`` and ``devices:`` of a round-trip YAML mapping (comments elsewhere stay)."""
    doc["buses"] = imported.buses
    doc["devices"] = imported.devices


def iter_raw(doc: Any, section: str) -> Iterable[Any]:
    value = doc.get(section) if hasattr(doc, "get") else None
    return value if isinstance(value, list) else []
