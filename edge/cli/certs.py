"""`gatehouse certs`: a private CA, the broker's certificate and credentials for a demo or small site.

::

    gatehouse certs init    --dir DIR [--broker-host H ...]   CA + broker certificate (+ broker config)
    gatehouse certs gateway --dir DIR GATEWAY_ID              client cert, password, signing key
    gatehouse certs central --dir DIR                         central's client cert and password,
                                                              and its ack-signing key (kept if present)
    gatehouse certs broker  --dir DIR [--broker-host H ...]   renew the broker certificate (same CA)
    gatehouse certs dashboard --dir DIR GATEWAY_ID --host H   the LAN dashboard's HTTPS certificate
    gatehouse certs protect --dir DIR                         encrypt ca.key (or change its passphrase)
    gatehouse certs broker-config --dir DIR --out FOLDER [--port N] [--auth MODE]

Everything is written under DIR (layout in ``cloud_sync.certs``); private keys are 0600. The
commands print what to put in the site file (``uplink:``, ``dashboard:``) and in ``central.yaml``.

The CA key is encrypted with a passphrase. Every command that signs asks for it, from
``--ca-passphrase-file FILE`` (its first line), else ``$GATEHOUSE_CA_PASSPHRASE``, else a prompt on
the terminal; ``certs init --no-ca-passphrase`` writes the key in the clear (a throw-away PKI).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from cloud_sync.broker_config import AuthMode, BrokerConfigError, write_broker_config
from cloud_sync.certs import (
    CENTRAL_USER,
    PkiError,
    PkiLayout,
    ca_key_encrypted,
    create_ca,
    issue_client,
    issue_dashboard,
    issue_server,
    load_ca,
    protect_ca_key,
    validate_client_name,
)
from cloud_sync.errors import KeyFileError
from cloud_sync.keys import (
    ensure_signing_key,
    generate_private_key,
    key_id,
    save_private_key,
    save_public_key,
)

PASSPHRASE_ENV = "GATEHOUSE_CA_PASSPHRASE"


def _passphrase_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ca-passphrase-file",
        type=Path,
        metavar="FILE",
        help=f"read the CA key's passphrase from FILE (else ${PASSPHRASE_ENV}, else a prompt)",
    )


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "certs", help="create the site's private CA, broker certificate and gateway credentials"
    )
    actions = parser.add_subparsers(dest="certs_action", required=True, metavar="ACTION")

    init = actions.add_parser("init", help="create the CA and the broker's certificate")
    _passphrase_option(init)
    init.add_argument(
        "--no-ca-passphrase",
        action="store_true",
        help="write the CA key unencrypted (a throw-away or test PKI only)",
    )
    init.add_argument("--dir", type=Path, required=True, help="folder for the site's PKI")
    init.add_argument(
        "--broker-host",
        action="append",
        default=[],
        metavar="HOST",
        help="name or address clients use for the broker (repeatable; localhost and 127.0.0.1 always)",
    )
    init.add_argument("--valid-days", type=int, default=3650, help="CA validity (default 3650)")
    init.add_argument("--force", action="store_true", help="replace an existing CA (re-issue everything!)")
    init.set_defaults(handler=_init)

    gateway = actions.add_parser("gateway", help="credentials and signing key for one gateway")
    gateway.add_argument("--dir", type=Path, required=True)
    gateway.add_argument("gateway_id")
    gateway.add_argument("--broker-host", default="localhost", help="host name for the printed config")
    gateway.add_argument("--broker-port", type=int, default=8883)
    _passphrase_option(gateway)
    gateway.set_defaults(handler=_gateway)

    central = actions.add_parser("central", help="credentials for the central service")
    central.add_argument("--dir", type=Path, required=True)
    central.add_argument("--broker-host", default="localhost")
    central.add_argument("--broker-port", type=int, default=8883)
    _passphrase_option(central)
    central.set_defaults(handler=_central)

    renew = actions.add_parser("broker", help="issue a new broker certificate from the existing CA (renewal)")
    renew.add_argument("--dir", type=Path, required=True)
    renew.add_argument("--broker-host", action="append", default=[], metavar="HOST")
    _passphrase_option(renew)
    renew.set_defaults(handler=_broker)

    dashboard = actions.add_parser(
        "dashboard", help="the HTTPS certificate of a gateway's LAN dashboard, from the site CA"
    )
    dashboard.add_argument("--dir", type=Path, required=True)
    dashboard.add_argument("gateway_id")
    dashboard.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="HOST",
        help="name or address browsers use for the dashboard (repeatable; localhost and 127.0.0.1 always)",
    )
    dashboard.add_argument("--valid-days", type=int, default=825, help="validity (default 825)")
    _passphrase_option(dashboard)
    dashboard.set_defaults(handler=_dashboard)

    protect = actions.add_parser(
        "protect", help="encrypt the CA key with a passphrase, or change its passphrase"
    )
    protect.add_argument("--dir", type=Path, required=True)
    _passphrase_option(protect)
    protect.add_argument(
        "--new-passphrase-file", type=Path, metavar="FILE", help="the new passphrase (else a prompt)"
    )
    protect.set_defaults(handler=_protect)

    opcua = actions.add_parser(
        "opcua", help="the gateway's OPC UA application certificate and key (for opcua buses)"
    )
    opcua.add_argument(
        "--dir", type=Path, required=True, help="folder, e.g. SITE_DIR/pki/opcua (the bus default)"
    )
    opcua.add_argument(
        "--application-uri",
        default=None,
        help="the URI servers check against the session (default urn:HOSTNAME:gatehouse, the bus default)",
    )
    opcua.add_argument("--hostname", default=None, help="DNS name in the certificate (default: this host's)")
    opcua.add_argument("--force", action="store_true", help="replace an existing certificate")
    opcua.set_defaults(handler=_opcua)

    broker = actions.add_parser("broker-config", help="write a runnable Mosquitto config for this PKI")
    broker.add_argument("--dir", type=Path, required=True)
    broker.add_argument("--out", type=Path, required=True, help="folder for mosquitto.conf, acl, data")
    broker.add_argument("--port", type=int, default=8883)
    broker.add_argument("--bind", default=None, help="address to listen on (default: all)")
    broker.add_argument("--auth", choices=[m.value for m in AuthMode], default=AuthMode.PASSWORD.value)
    broker.add_argument(
        "--as-root", action="store_true", help="add `user root` (a private broker started by root)"
    )
    broker.set_defaults(handler=_broker_config)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _read_passphrase_file(path: Path) -> bytes:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise PkiError(f"cannot read the passphrase file {path}: {exc.strerror or exc}") from exc
    if not lines or not lines[0]:
        raise PkiError(f"the passphrase file {path} is empty")
    return lines[0]


def _prompt(label: str, *, confirm: bool) -> bytes:
    if not sys.stdin.isatty():
        raise PkiError(
            f"the CA key needs a passphrase: give --ca-passphrase-file FILE or set {PASSPHRASE_ENV}"
            " (no terminal to ask on)"
        )
    first = getpass.getpass(f"{label}: ")
    if confirm and getpass.getpass(f"{label} (again): ") != first:
        raise PkiError("the two passphrases differ")
    return first.encode()


def _passphrase(args: argparse.Namespace, *, new: bool = False) -> bytes:
    """The CA passphrase: the file, the environment, or the terminal (asked twice when new)."""
    file: Path | None = getattr(args, "ca_passphrase_file", None)
    if file is not None:
        return _read_passphrase_file(file)
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env.encode()
    return _prompt("new CA passphrase" if new else "CA passphrase", confirm=new)


def _load_ca(args: argparse.Namespace, layout: PkiLayout) -> Any:
    """The CA, asking for its passphrase only when the key is encrypted."""
    return load_ca(layout, passphrase=_passphrase(args) if ca_key_encrypted(layout) else None)


def _init(args: argparse.Namespace) -> int:
    layout = PkiLayout(args.dir.resolve())
    if layout.ca_cert.exists() and not args.force:
        # before asking for a passphrase that would not be used
        print(f"gatehouse certs init: {layout.ca_cert} exists; refusing to replace a CA (--force)")
        return 1
    try:
        passphrase = None if args.no_ca_passphrase else _passphrase(args, new=True)
        ca = create_ca(
            layout, now=_now(), valid_days=args.valid_days, overwrite=args.force, passphrase=passphrase
        )
        issue_server(ca, layout, hostnames=args.broker_host, now=_now())
    except PkiError as exc:
        print(f"gatehouse certs init: {exc}")
        return 1
    state = "unencrypted!" if args.no_ca_passphrase else "encrypted with the passphrase"
    print(
        f"CA:                 {layout.ca_cert}  ({layout.ca_key.name} {state}; keep it offline once set up)"
    )
    print(f"broker certificate: {layout.broker_cert}")
    print(f"broker key:         {layout.broker_key}")
    print(f"password file:      {layout.password_file}  (filled by `certs gateway` / `certs central`)")
    print("next: gatehouse certs central --dir ...; gatehouse certs gateway --dir ... GATEWAY_ID")
    return 0


def _gateway(args: argparse.Namespace) -> int:
    layout = PkiLayout(args.dir.resolve())
    try:
        name = validate_client_name(args.gateway_id)
        ca = _load_ca(args, layout)
        creds = issue_client(ca, layout, name, now=_now())
        signing_key = generate_private_key()
        key_path = layout.client_dir(name) / "signing.key"
        pub_path = layout.client_dir(name) / "signing.pub"
        save_private_key(signing_key, key_path)
        save_public_key(signing_key.public_key(), pub_path)
    except (PkiError, KeyFileError) as exc:
        print(f"gatehouse certs gateway: {exc}")
        return 1
    kid = key_id(signing_key.public_key())
    print(f"gateway {name}: certificate {creds.cert_path}, signing key id {kid}")
    print(f"broker password file updated: {layout.password_file} (reload the broker: kill -HUP)")
    print("\n# site file (the gateway):")
    print("uplink:")
    for key, value in {
        "gateway_id": name,
        "broker_host": args.broker_host,
        "broker_port": args.broker_port,
        "ca_file": layout.ca_cert,
        "username": name,
        "password_file": creds.password_path,
        "client_cert": creds.cert_path,
        "client_key": creds.key_path,
        "signing_key": key_path,
        "central_key": layout.central_signing_pub,
    }.items():
        print(f"  {key}: {json.dumps(str(value)) if isinstance(value, Path) else value}")
    if not layout.central_signing_pub.exists():
        print(f"# central_key: {layout.central_signing_pub} is made by `gatehouse certs central`")
    print("\n# central.yaml (enrol the gateway's public signing key):")
    print("gateways:")
    print(f"  - id: {name}")
    print("    keys:")
    print(f"      - file: {json.dumps(str(pub_path))}")
    return 0


def _central(args: argparse.Namespace) -> int:
    layout = PkiLayout(args.dir.resolve())
    try:
        ca = _load_ca(args, layout)
        creds = issue_client(ca, layout, CENTRAL_USER, now=_now())
        signing, created = ensure_signing_key(layout.central_signing_key, layout.central_signing_pub)
    except (PkiError, KeyFileError) as exc:
        print(f"gatehouse certs central: {exc}")
        return 1
    print(f"central: certificate {creds.cert_path}")
    state = "new" if created else "kept (rotate it as docs/operations.md describes)"
    print(
        f"central: ack-signing key {layout.central_signing_key},"
        f" key id {key_id(signing.public_key())}, {state}"
    )
    print(f"gateways pin its public key: uplink.central_key: {json.dumps(str(layout.central_signing_pub))}")
    print("\n# central.yaml:")
    print(f"signing_key: {json.dumps(str(layout.central_signing_key))}")
    print("broker:")
    print(f"  host: {args.broker_host}")
    print(f"  port: {args.broker_port}")
    print(f"  ca_file: {json.dumps(str(layout.ca_cert))}")
    print(f"  username: {CENTRAL_USER}")
    print(f"  password_file: {json.dumps(str(creds.password_path))}")
    print("  client_cert:")
    print(f"    cert_file: {json.dumps(str(creds.cert_path))}")
    print(f"    key_file: {json.dumps(str(creds.key_path))}")
    return 0


def _broker(args: argparse.Namespace) -> int:
    layout = PkiLayout(args.dir.resolve())
    try:
        ca = _load_ca(args, layout)
        cert, _key = issue_server(ca, layout, hostnames=args.broker_host, now=_now())
    except PkiError as exc:
        print(f"gatehouse certs broker: {exc}")
        return 1
    print(f"broker certificate: {cert}  (restart the broker to use it; clients keep trusting the CA)")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    layout = PkiLayout(args.dir.resolve())
    try:
        name = validate_client_name(args.gateway_id)
        ca = _load_ca(args, layout)
        cert, key = issue_dashboard(
            ca, layout, name, hostnames=args.host, now=_now(), valid_days=args.valid_days
        )
    except PkiError as exc:
        print(f"gatehouse certs dashboard: {exc}")
        return 1
    names = ", ".join(["localhost", "127.0.0.1", *args.host])
    print(f"dashboard of {name}: certificate {cert} for {names}")
    print(f"copy both files to the gateway (the key stays 0600); browsers trust {layout.ca_cert}")
    print("\n# site file (the gateway):")
    print("dashboard:")
    print(f"  tls_cert: {json.dumps(str(cert))}")
    print(f"  tls_key: {json.dumps(str(key))}")
    return 0


def _protect(args: argparse.Namespace) -> int:
    layout = PkiLayout(args.dir.resolve())
    try:
        was_encrypted = ca_key_encrypted(layout)
        ca = _load_ca(args, layout)
        if args.new_passphrase_file is not None:
            new = _read_passphrase_file(args.new_passphrase_file)
        elif was_encrypted:
            new = _prompt("new CA passphrase", confirm=True)
        else:
            new = _passphrase(args, new=True)
        protect_ca_key(ca, layout, new)
    except PkiError as exc:
        print(f"gatehouse certs protect: {exc}")
        return 1
    print(f"{layout.ca_key}: encrypted with the {'new ' if was_encrypted else ''}passphrase")
    return 0


def _opcua(args: argparse.Namespace) -> int:
    import socket

    from drivers.opcua.certs import CERT_NAME, make_application_certificate

    hostname = args.hostname or socket.gethostname()
    uri = args.application_uri or f"urn:{hostname}:gatehouse"
    if (args.dir / CERT_NAME).exists() and not args.force:
        print(
            f"{args.dir / CERT_NAME} exists; keeping it (--force: a new one, which servers must trust again)"
        )
        return 0
    cert, key = make_application_certificate(args.dir, uri, hostname)
    print(f"OPC UA application certificate {cert} (key {key}), application URI {uri}")
    print("Give the certificate to each OPC UA server's administrator to trust; on the bus:")
    print(f"  certificate: {cert}")
    print(f"  private_key: {key}")
    print(f"  application_uri: {uri}")
    return 0


def _broker_config(args: argparse.Namespace) -> int:
    layout = PkiLayout(args.dir.resolve())
    if not layout.broker_cert.exists():
        print(f"gatehouse certs broker-config: no broker certificate in {layout.root}; run `certs init`")
        return 1
    try:
        files = write_broker_config(
            args.out.resolve(),
            layout=layout,
            port=args.port,
            bind_address=args.bind,
            auth=AuthMode(args.auth),
            run_as_root=args.as_root,
        )
    except BrokerConfigError as exc:
        print(f"gatehouse certs broker-config: {exc}")
        return 1
    print(f"wrote {files.config} and {files.acl}")
    print(f"run:  mosquitto -c {files.config}")
    return 0
