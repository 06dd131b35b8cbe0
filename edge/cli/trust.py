"""`gatehouse trust`: enrolment tokens, the trusted gateways and revocation, on central's host.

Works on ``trust.db`` directly (beside central's console.db), so it works whether or not central
is running: a running central notices the change within a second (its watcher) and rejects a
revoked gateway's batches; this command also rewrites the broker files and reloads the broker.

    gatehouse trust token GW -c central.yaml [--estate E] [--name N] [--expires 24h] [--url URL]
    gatehouse trust list -c central.yaml
    gatehouse trust revoke GW -c central.yaml --reason "stolen"
    gatehouse trust e2e-key -c central.yaml        # central's X25519 key (central.yaml e2e_key)

Exit status: 0 done, 1 refused (unknown gateway, already revoked, bad value), 2 configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloud_sync.central.config import CentralConfig
    from cloud_sync.central.trust import TrustService

__all__ = ["parse_duration", "register"]

EXIT_OK, EXIT_REFUSED, EXIT_CONFIG = 0, 1, 2
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d`` or plain seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a duration like 30m, 24h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "trust",
        help="enrolment tokens, trusted gateways and revocation (on central's host)",
        description="Manage central's trust store (central.yaml trust:). See docs/trust.md.",
    )
    actions = parser.add_subparsers(dest="trust_action", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", "-c", required=True, type=Path, help="central.yaml")

    token = actions.add_parser("token", help="issue a one-time enrolment token for a gateway id")
    token.add_argument("gateway", metavar="GW", help="the gateway id it will enrol as")
    common(token)
    token.add_argument("--estate", help="the estate the gateway belongs to")
    token.add_argument("--name", help="a human-readable name")
    token.add_argument(
        "--expires", type=parse_duration, default=None, help="lifetime, e.g. 30m, 24h, 7d (default 24h)"
    )
    token.add_argument("--url", help="central's API URL as gateways reach it (default from central.yaml)")
    token.set_defaults(handler=_token)

    listing = actions.add_parser("list", help="list trusted gateways and recent tokens")
    common(listing)
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", help="revoke a gateway: reject its batches, cut its broker access")
    revoke.add_argument("gateway", metavar="GW")
    common(revoke)
    revoke.add_argument("--reason", required=True, help="why (kept in the trust audit)")
    revoke.set_defaults(handler=_revoke)

    e2e = actions.add_parser("e2e-key", help="make central's X25519 key for end-to-end encryption")
    common(e2e)
    e2e.add_argument("--force", action="store_true", help="replace an existing key (gateways must re-enrol)")
    e2e.set_defaults(handler=_e2e_key)


def _config(path: Path) -> CentralConfig:
    from cloud_sync.central.config import load_central_config

    return load_central_config(path)


def _service(config: CentralConfig) -> TrustService:
    from cloud_sync.central.console import console_data_dir
    from cloud_sync.central.trust import TRUST_DB, TrustService, TrustStore

    store = TrustStore(console_data_dir(config.database, config.signing_key) / TRUST_DB)
    return TrustService(config, store)


def _default_url(config: CentralConfig) -> str:
    host = config.api.host
    if host in ("0.0.0.0", "::", "") and config.trust is not None:
        host = config.trust.broker_host
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.api.tls is not None else "http"
    return f"{scheme}://{host}:{config.api.port}"


def _run(args: argparse.Namespace, action: Any) -> int:
    from cloud_sync.central.config import CentralConfigError
    from cloud_sync.central.trust import TrustError
    from cloud_sync.certs import PkiError
    from cloud_sync.errors import CentralStoreError, KeyFileError

    try:
        config = _config(args.config)
        if config.trust is None:
            print(f"{args.config}: no trust: section; token enrolment is off", file=sys.stderr)
            return EXIT_CONFIG
        service = _service(config)
    except (CentralConfigError, PkiError, KeyFileError, CentralStoreError, TrustError) as exc:
        print(f"gatehouse trust: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        code: int = action(config, service)
        return code
    except TrustError as exc:
        print(f"gatehouse trust: {exc.detail}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        service.store.close()


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _token(args: argparse.Namespace) -> int:
    def action(config: CentralConfig, service: TrustService) -> int:
        from cloud_sync.central.trust import enroll_command

        issued = service.issue_token(
            args.gateway,
            estate=args.estate,
            name=args.name,
            expires_in_s=args.expires,
            by=f"cli:{getpass.getuser()}",
            source="cli",
        )
        print(f"token for {issued.gateway_id} (valid until {_when(issued.expires_at)}, shown once):")
        print(f"  {issued.token}")
        print("on the gateway, run:")
        print(f"  {enroll_command(args.url or _default_url(config), issued.token)}")
        return EXIT_OK

    return _run(args, action)


def _list(args: argparse.Namespace) -> int:
    def action(_config: CentralConfig, service: TrustService) -> int:
        now = service.now()
        keys: dict[str, list[str]] = {}
        for k in service.store.signing_keys():
            if k.valid_until is None:
                keys.setdefault(k.gateway_id, []).append(k.kid)
            elif k.valid_until >= now:
                keys.setdefault(k.gateway_id, []).append(f"{k.kid} (old, until {_when(k.valid_until)})")
        print("gateways:")
        gateways = service.store.gateways()
        for gw in gateways:
            status = "REVOKED" if gw.revoked else "enrolled"
            print(
                f"  {gw.id:<24} {status:<9} estate={gw.estate or '-'} cert until {_when(gw.cert_not_after)}"
                f" e2e={'on' if gw.encrypt != 'off' else 'off'} keys={', '.join(keys.get(gw.id, [])) or '-'}"
            )
            if gw.revoked:
                print(f"  {'':<24} revoked {_when(gw.revoked_at)} by {gw.revoked_by}: {gw.revoked_reason}")
        if not gateways:
            print("  (none)")
        print("tokens:")
        tokens = service.store.tokens(limit=50)
        for t in tokens:
            state = "used" if t.used_at is not None else "expired" if t.expires_at < now else "pending"
            print(f"  {t.gateway_id:<24} {state:<8} by {t.created_by} expires {_when(t.expires_at)}")
        if not tokens:
            print("  (none)")
        return EXIT_OK

    return _run(args, action)


def _revoke(args: argparse.Namespace) -> int:
    def action(_config: CentralConfig, service: TrustService) -> int:
        result = service.revoke_now(
            args.gateway, reason=args.reason, by=f"cli:{getpass.getuser()}", source="cli"
        )
        print(f"{result.gateway_id} revoked; a running central rejects its batches within a second")
        if result.broker is None:
            print("broker files: not managed by central (trust.broker_access is not set)")
        elif result.broker.reloaded:
            print(f"broker files rewritten and broker reloaded ({result.broker.detail})")
        else:
            print(
                f"broker files rewritten but the broker was NOT reloaded: {result.broker.detail}",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        return EXIT_OK

    return _run(args, action)


def _e2e_key(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from cloud_sync.central.config import CentralConfigError
    from cloud_sync.e2e import encryption_key_id
    from cloud_sync.keys import save_x25519_private, save_x25519_public

    try:
        config = _config(args.config)
    except CentralConfigError as exc:
        print(f"gatehouse trust: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if config.e2e_key is None:
        print(f"{args.config}: set e2e_key: (the private key's path) first", file=sys.stderr)
        return EXIT_CONFIG
    if config.e2e_key.exists() and not args.force:
        print(
            f"{config.e2e_key} exists; --force replaces it (enrolled gateways then need to renew)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    key = X25519PrivateKey.generate()
    save_x25519_private(key, config.e2e_key)
    public = config.e2e_key.with_suffix(".pub")
    save_x25519_public(key.public_key(), public)
    print(
        f"central's X25519 key: {config.e2e_key} (public half {public},"
        f" key id {encryption_key_id(key.public_key())})"
    )
    return EXIT_OK
