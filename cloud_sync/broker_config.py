"""Render the project's Mosquitto configuration for a given PKI directory and port.

The production file ``config/mosquitto/mosquitto.conf`` is the single source: this module reads
it and replaces only the directives that depend on where things are (paths, port, auth mode).
Tests and the demo therefore run the very configuration that is deployed, not a look-alike.
"""

from __future__ import annotations

import enum
import shutil
from dataclasses import dataclass
from pathlib import Path

import structlog

from cloud_sync.certs import PkiLayout

__all__ = [
    "DEFAULT_TEMPLATE_DIR",
    "AuthMode",
    "BrokerConfigError",
    "BrokerFiles",
    "render_config",
    "write_broker_config",
]

_LOG = structlog.get_logger(__name__)

DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "config" / "mosquitto"
# Listener options given before any `listener` line make Mosquitto open an implicit default
# listener on 1883 without TLS; the renderer refuses such a template.
_LISTENER_OPTIONS = frozenset(
    {
        "cafile",
        "certfile",
        "keyfile",
        "require_certificate",
        "use_identity_as_username",
        "tls_version",
        "crlfile",
    }
)


class BrokerConfigError(Exception):
    """The template is missing or lacks a directive we must set."""


class AuthMode(enum.StrEnum):
    PASSWORD = "password"
    CERTIFICATE = "certificate"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    config: Path
    acl: Path
    persistence_dir: Path
    log_file: Path


def _auth_directives(mode: AuthMode) -> dict[str, str]:
    if mode is AuthMode.PASSWORD:
        return {"require_certificate": "false", "use_identity_as_username": "false"}
    if mode is AuthMode.CERTIFICATE:
        return {"require_certificate": "true", "use_identity_as_username": "true"}
    return {"require_certificate": "true", "use_identity_as_username": "false"}


def render_config(
    template: str,
    *,
    layout: PkiLayout,
    acl_path: Path,
    port: int,
    bind_address: str | None,
    auth: AuthMode,
    persistence_dir: Path,
    log_file: Path | None,
    run_as_root: bool,
    crl_file: Path | None = None,
) -> str:
    """Pure: the template text with the site-dependent directives replaced.

    ``crl_file``: add ``crlfile`` to the listener (right after ``cafile``), so client
    certificates central revoked are refused at the TLS handshake (docs/trust.md §6: Mosquitto
    2.0.11 re-reads it on SIGHUP).
    """
    overrides: dict[str, str] = {
        "password_file": str(layout.password_file),
        "acl_file": str(acl_path),
        "persistence_location": f"{persistence_dir}/",
        "cafile": str(layout.ca_cert),
        "certfile": str(layout.broker_cert),
        "keyfile": str(layout.broker_key),
        "listener": f"{port} {bind_address}" if bind_address else str(port),
        **_auth_directives(auth),
    }
    seen: set[str] = set()
    out: list[str] = []
    for line in template.splitlines():
        stripped = line.strip()
        key = stripped.split(None, 1)[0] if stripped and not stripped.startswith("#") else ""
        if key in _LISTENER_OPTIONS and "listener" not in seen:
            raise BrokerConfigError(f"{key!r} appears before the listener line")
        if key in overrides:
            if key in seen:
                raise BrokerConfigError(f"template sets {key!r} twice; expected one listener")
            seen.add(key)
            out.append(f"{key} {overrides[key]}")
            if key == "cafile" and crl_file is not None:
                out.append(f"crlfile {crl_file}")
        elif key == "log_dest" and log_file is not None:
            if "log_dest" not in seen:
                seen.add("log_dest")
                out.append(f"log_dest file {log_file}")
        else:
            out.append(line)
    missing = set(overrides) - seen
    if missing:
        raise BrokerConfigError(f"template lacks directives: {', '.join(sorted(missing))}")
    if run_as_root:
        # Mosquitto started as root drops to the `mosquitto` user and then cannot read our 0600
        # root-owned keys; a private broker (tests, demo) keeps running as the invoking user.
        out.insert(0, "user root")
    return "\n".join(out) + "\n"


def write_broker_config(
    workdir: Path,
    *,
    layout: PkiLayout,
    port: int,
    bind_address: str | None = "127.0.0.1",
    auth: AuthMode = AuthMode.PASSWORD,
    template_dir: Path = DEFAULT_TEMPLATE_DIR,
    run_as_root: bool = True,
    log_to_file: bool = True,
    crl_file: Path | None = None,
) -> BrokerFiles:
    """Write ``mosquitto.conf`` and ``acl`` into ``workdir`` for a private (test/demo) broker."""
    try:
        template = (template_dir / "mosquitto.conf").read_text()
    except FileNotFoundError as exc:
        raise BrokerConfigError(f"no broker template in {template_dir}") from exc
    workdir.mkdir(parents=True, exist_ok=True)
    acl_path = workdir / "acl"
    shutil.copyfile(template_dir / "acl", acl_path)
    persistence_dir = workdir / "data"
    persistence_dir.mkdir(exist_ok=True)
    log_file = workdir / "mosquitto.log"
    text = render_config(
        template,
        layout=layout,
        acl_path=acl_path,
        port=port,
        bind_address=bind_address,
        auth=auth,
        persistence_dir=persistence_dir,
        log_file=log_file if log_to_file else None,
        run_as_root=run_as_root,
        crl_file=crl_file,
    )
    config_path = workdir / "mosquitto.conf"
    config_path.write_text(text)
    _LOG.debug("broker_config.written", path=str(config_path), port=port, auth=str(auth))
    return BrokerFiles(config=config_path, acl=acl_path, persistence_dir=persistence_dir, log_file=log_file)
