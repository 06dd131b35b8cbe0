"""JSON Schemas of a site file and of a profile, generated from the pydantic models.

Editors use them to complete and check YAML as it is typed (see docs/configuration.md). The
generated files live in ``config/schema/`` and a test keeps them equal to this module's output,
so regenerate with ``python -m edge.config.schema config/schema`` (``make schema``) after
changing ``edge.config.models``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import structlog
from pydantic import BaseModel, Field, TypeAdapter, create_model

from drivers.registry import bus_drivers, protocols
from edge.config.models import SiteConfig

__all__ = ["SCHEMAS", "render", "schema_of", "write_schemas"]

_LOG = structlog.get_logger(__name__)

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _site_file_model() -> type[BaseModel]:
    """The site model with ``devices:`` described as any registered device model (the loader
    picks the one of the device's bus type; a schema cannot follow that reference)."""
    device_models = tuple(dict.fromkeys(d.device_model for d in bus_drivers().values()))
    devices: Any = list[Union[device_models]]  # type: ignore[valid-type]  # noqa: UP007
    model: type[BaseModel] = create_model(
        "SiteConfig", __base__=SiteConfig, devices=(devices, Field(default_factory=list))
    )
    return model


def _profile_type() -> Any:
    models = tuple(spec.profile_model for spec in protocols().values())
    return Union[models]  # noqa: UP007


SCHEMAS: dict[str, tuple[Any, str]] = {
    "site.schema.json": (_site_file_model(), "Gatehouse site file"),
    "profile.schema.json": (_profile_type(), "Gatehouse device profile"),
}


def schema_of(model: Any, title: str) -> dict[str, Any]:
    # Validation mode: the schema describes what may be written, defaults included.
    body = TypeAdapter(model).json_schema(mode="validation")
    body["title"] = title
    return {"$schema": _DIALECT, **body}


def render(model: Any, title: str) -> str:
    """The schema as text, byte-for-byte stable between runs so the committed copy can be compared."""
    return json.dumps(schema_of(model, title), indent=2, ensure_ascii=False) + "\n"


def write_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, (model, title) in SCHEMAS.items():
        target = out_dir / name
        target.write_text(render(model, title), encoding="utf-8")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m edge.config.schema OUT_DIR", file=sys.stderr)  # noqa: T201
        return 2
    for path in write_schemas(Path(args[0])):
        print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
