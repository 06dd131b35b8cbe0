"""`gatehouse enroll URL TOKEN`: make this gateway's keys and trade a one-time token for an identity.

The keys (TLS, signing, end-to-end) are made here and never leave the machine: central gets a
CSR and the public keys, and answers with the client certificate, the broker's address and its
own public keys to pin. The identity folder is written only when everything checked out, all at
once (``edge.identity.folder``); a refused token leaves nothing behind.

Plain ``http://`` is accepted only to a loopback address (central on the same machine, as in
``make demo``): anywhere else the token would cross the network in clear.

Exit status: 0 enrolled, 1 central refused the token, 2 anything else (unreachable, a folder
already there, an answer that does not fit the keys sent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edge.identity.client import CentralError, Refused, post
from edge.identity.folder import write_enrolment
from edge.identity.material import new_keys
from edge.identity.protocol import ENROLL_PATH, GrantError, enroll_request, parse_grant

__all__ = ["DEFAULT_DIR", "register"]

# Beside the daemon's default data_dir, so one folder holds everything the gateway keeps.
DEFAULT_DIR = Path("/var/lib/gatehouse/identity")
EXIT_OK, EXIT_REFUSED, EXIT_FAILED = 0, 1, 2


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "enroll",
        help="enrol this gateway with central using a one-time token",
        description=(
            "Make this gateway's keys, send central the public halves with a one-time enrolment "
            "token, and write the identity folder the site file's `uplink: {identity: DIR}` names."
        ),
    )
    parser.add_argument(
        "url", metavar="URL", help="central's API base URL, e.g. https://central.example:8443"
    )
    parser.add_argument(
        "token", metavar="TOKEN", help="the one-time token from central (`gatehouse trust token`)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        metavar="DIR",
        help=f"identity folder to write (default {DEFAULT_DIR})",
    )
    parser.add_argument(
        "--ca",
        type=Path,
        default=None,
        metavar="FILE",
        help="CA certificate (PEM) that signed central's HTTPS certificate; default: the system's",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing identity folder")
    parser.set_defaults(handler=_handle)


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and (host == "localhost" or ipaddress.ip_address(host).is_loopback)
    except ValueError:
        return False


def _handle(args: argparse.Namespace) -> int:
    url: str = args.url
    folder: Path = args.dir.absolute()
    parts = urlsplit(url)
    # Plain HTTP never leaves the machine on a loopback address (the demo, central on the same box).
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
        print(f"enroll: {url} is not an https:// URL; the token must not travel in clear", file=sys.stderr)
        return EXIT_FAILED
    if folder.exists() and not args.force:
        print(f"enroll: {folder} already exists; use --force to enrol again over it", file=sys.stderr)
        return EXIT_FAILED
    api_ca: bytes | None = None
    if args.ca is not None:
        try:
            api_ca = args.ca.read_bytes()
        except OSError as exc:
            print(f"enroll: {args.ca}: cannot read: {exc.strerror}", file=sys.stderr)
            return EXIT_FAILED
    keys = new_keys()
    try:
        answer = post(url, ENROLL_PATH, enroll_request(args.token, keys), ca_file=args.ca)
        grant = parse_grant(answer, keys)
        identity = write_enrolment(
            folder, grant, keys, central_url=url, api_ca=api_ca, now=time.time(), replace=args.force
        )
    except Refused as exc:
        print(f"enroll: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (CentralError, GrantError) as exc:
        print(f"enroll: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"enroll: cannot write {folder}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    until = dt.datetime.fromtimestamp(identity.not_after, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    estate = f", estate {identity.estate}" if identity.estate else ""
    print(f"enrolled as gateway {identity.gateway_id}{estate}; certificate valid until {until}")
    print(f"identity written to {folder} (renewed automatically by the running gateway)")
    print("\nIn the site file:\n")
    print(f"gateway:\n  id: {identity.gateway_id}\nuplink:\n  identity: {folder}")
    return EXIT_OK
