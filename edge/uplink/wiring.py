"""The site file's ``uplink:`` section → a running ``cloud_sync.uplink.Uplink`` in the daemon.

The site loader keeps ``uplink:`` as a raw mapping (``edge.config.models.SiteConfig``); this module
owns its meaning:

* :func:`check_uplink` validates it as ``cloud_sync.uplink.UplinkConfig`` and returns ``Issue``s
  located under ``("uplink", field)``, so ``gatehouse check`` and the loader report a bad uplink
  section as ``site.yaml:line:col: uplink.field: message`` like every other mistake;
* :func:`uplink_config` builds the config: ``gateway_id`` defaults to the site's ``gateway.id`` and
  relative file paths (CA, client certificate and key, password file, signing key) are taken from
  the site file's folder, like ``gateway.data_dir``;
* :func:`enter_uplink` is the hook ``edge.app.Gateway`` calls: it enters the uplink into the
  gateway's exit stack (so it stops before the outbox closes) and returns it. Rejected acks
  (forged, unsigned, replayed) become ``system.ack_rejected`` events in the outbox's event lane;
* ``identity: DIR`` (a folder written by ``gatehouse enroll``, ``edge.identity``) supplies every
  setting central issued — gateway id, broker, CA, client certificate, signing and e2e keys,
  central's keys, ``encrypt`` — under whatever the section sets itself, and starts the renewal
  task (``edge.identity.renewal``), which switches the running uplink to each renewed identity.

``central_key`` is required: the gateway deletes a batch only on an ack signed by central, so
without central's public key the uplink does not start (there is no unsigned mode).

Example (enrolled with ``gatehouse enroll``)::

    uplink:
      identity: /var/lib/gatehouse/identity

Example (keys made by hand; ``gatehouse certs gateway`` prints one)::

    uplink:
      broker_host: mqtt.example.net
      broker_port: 8883
      ca_file: pki/ca.crt
      username: gw-01
      password_file: pki/clients/gw-01/password
      signing_key: pki/clients/gw-01/signing.key
      central_key: pki/central-signing.pub
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from cloud_sync.errors import KeyFileError
from cloud_sync.keys import load_public_keys, load_x25519_public
from cloud_sync.ports import BatchStore
from cloud_sync.uplink import EventSink, UplinkConfig
from core.errors import ConfigError, ConfigProblem
from core.model import Event
from core.yaml_doc import format_loc, read_yaml
from edge.config.checks import Issue, issues_from_validation
from edge.config.site import Site
from edge.identity.folder import Identity, IdentityError, read_identity
from edge.identity.renewal import Renewer, renewing
from edge.identity.settings import merge_settings
from edge.uplink.thread import UplinkThread

__all__ = ["FILE_KEYS", "check_uplink", "enter_uplink", "uplink_config"]

_LOG = structlog.get_logger(__name__)

# Keys naming files; relative values are relative to the site file's folder.
FILE_KEYS: tuple[str, ...] = (
    "ca_file",
    "client_cert",
    "client_key",
    "password_file",
    "signing_key",
    "central_key",
    "central_e2e_key",
    "e2e_key",
)
_LOC = ("uplink",)
_NO_CENTRAL_KEY = (
    "required: the file with central's public signing key (PEM), e.g. pki/central-signing.pub "
    "made by `gatehouse certs central`; the gateway deletes batches only on acks signed with it "
    "(docs/operations.md, 'Central's signing key')"
)


def _identity_folder(raw: Mapping[str, Any], base_dir: Path) -> Path | None:
    value = raw.get("identity")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise IdentityError("expected the path of an identity folder (made by `gatehouse enroll`)")
    return base_dir / value  # an absolute value stays absolute


def _read_identity(raw: Mapping[str, Any], base_dir: Path) -> Identity | None:
    folder = _identity_folder(raw, base_dir)
    return None if folder is None else read_identity(folder)


def _with_defaults(
    raw: Mapping[str, Any], *, gateway_id: str, base_dir: Path, identity: Identity | None = None
) -> dict[str, Any]:
    data = {k: v for k, v in raw.items() if k != "identity"}
    for key in FILE_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            data[key] = str(base_dir / value)  # an absolute value stays absolute
    if identity is not None:
        data = merge_settings(data, identity)
    data.setdefault("gateway_id", gateway_id)
    return data


def check_uplink(raw: Any, *, gateway_id: str, base_dir: Path) -> list[Issue]:
    """Every problem of an ``uplink:`` section (None when there is none), as located issues."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [Issue(_LOC, "expected a mapping of 'key: value' entries")]
    try:
        identity = _read_identity(raw, base_dir)
    except IdentityError as exc:
        return [Issue((*_LOC, "identity"), str(exc))]
    if identity is not None and "gateway_id" not in raw and identity.gateway_id != gateway_id:
        # Commands from central and the point ids use gateway.id: they must name the same gateway.
        message = (
            f"enrolled as gateway {identity.gateway_id!r}, but gateway.id is {gateway_id!r}; "
            f"set gateway.id: {identity.gateway_id}"
        )
        return [Issue((*_LOC, "identity"), message)]
    data = _with_defaults(raw, gateway_id=gateway_id, base_dir=base_dir, identity=identity)
    try:
        config = UplinkConfig.model_validate(data)
    except ValidationError as exc:
        issues = issues_from_validation(exc, data, UplinkConfig, prefix=_LOC)
        if "central_key" not in data:
            # Say what the missing setting is and where it comes from, not only "required".
            issues = [i for i in issues if i.loc != (*_LOC, "central_key")]
            issues.append(Issue((*_LOC, "central_key"), _NO_CENTRAL_KEY))
        return issues
    issues = []
    for key in FILE_KEYS:
        path = getattr(config, key)
        if path is not None and not Path(path).is_file():
            issues.append(Issue((*_LOC, key), f"file {path} does not exist"))
    if Path(config.central_key).is_file():
        try:
            load_public_keys(config.central_key)
        except KeyFileError as exc:
            issues.append(Issue((*_LOC, "central_key"), f"{exc} (an Ed25519 public key in PEM is expected)"))
    if config.central_e2e_key is not None and Path(config.central_e2e_key).is_file():
        try:
            load_x25519_public(config.central_e2e_key)
        except KeyFileError as exc:
            why = f"{exc} (central's X25519 encryption key is expected, not its signing key)"
            issues.append(Issue((*_LOC, "central_e2e_key"), why))
    return issues


def uplink_config(raw: Mapping[str, Any], site: Site) -> UplinkConfig:
    """The validated config; raises ``ConfigError`` located in the site file."""
    base_dir, gateway_id = site.path.parent, site.config.gateway.id
    issues = check_uplink(raw, gateway_id=gateway_id, base_dir=base_dir)
    if issues:
        raise ConfigError(_locate(issues, site.path))
    identity = _read_identity(raw, base_dir)
    data = _with_defaults(raw, gateway_id=gateway_id, base_dir=base_dir, identity=identity)
    return UplinkConfig.model_validate(data)


def _locate(issues: list[Issue], path: Path) -> list[ConfigProblem]:
    try:
        doc = read_yaml(path)
    except (OSError, ConfigError):
        # The file changed or vanished since it was loaded: report without a position.
        return [ConfigProblem(str(path), 1, 1, format_loc(i.loc), i.message) for i in issues]
    return [doc.problem(i) for i in issues]


async def enter_uplink(
    stack: AsyncExitStack,
    raw: Mapping[str, Any],
    *,
    site: Site,
    store: BatchStore,
    on_command: Callable[[bytes], None] | None = None,
) -> UplinkThread:
    """Start the uplink for ``site``; it runs until ``stack`` closes. ``on_command`` receives
    central's commands (unverified bytes) when given."""
    config = uplink_config(raw, site)
    # On a loop and thread of its own, so that a busy polling loop cannot starve it (thread.py).
    uplink = await stack.enter_async_context(
        UplinkThread(config, store=store, on_event=_event_sink(store), on_command=on_command)
    )
    identity = _read_identity(raw, site.path.parent)
    if identity is not None:

        async def switch(_renewed: Identity) -> None:
            # Built exactly as at start-up, so keys the site file sets itself still win.
            await uplink.switch_identity(uplink_config(raw, site))

        uplink.renewal = await stack.enter_async_context(renewing(Renewer(identity, switch=switch)))
    _LOG.info(
        "uplink started",
        gateway=config.gateway_id,
        broker=f"{config.broker_host}:{config.broker_port}",
        auth="certificate" if config.client_cert is not None else "password",
        central_keys=uplink.status()["central_keys"],
    )
    return uplink


def _event_sink(store: BatchStore) -> EventSink | None:
    """The outbox's event lane, when the store has one (``edge.outbox.Outbox.put_event``)."""
    put_event = getattr(store, "put_event", None)
    if put_event is None:
        return None

    async def sink(kind: str, source: str, data: dict[str, Any]) -> None:
        await put_event(Event(kind=kind, source=source, ts=time.time(), data=data))

    return sink
