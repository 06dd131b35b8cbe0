"""The identity folder on disk: read it, write it atomically, drop what a renewal replaced.

Layout (``gatehouse enroll`` makes it, the renewal task adds versions)::

    identity/                   0700
      identity.json             which version is current, and the facts central issued
      v1/                       0700, one folder per certificate: never changed once written
        client.key  client.crt  ca.crt  signing.key  central-signing.pub
        e2e.key  central-e2e.pub (when central encrypts)  password (when central gave one)
        api-ca.crt (when enrolled with --ca: the trust anchor for central's HTTPS)

Private keys and the password are 0600. ``identity.json`` is the one switch: a version folder
is written and synced completely before ``identity.json`` is replaced (``os.replace``) to name
it, so a crash at any point leaves either the old identity or the new one, never a mixture. The
previous version stays until the running uplink has switched (:func:`prune`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from cloud_sync.e2e import encryption_key_id
from cloud_sync.keys import key_id
from edge.identity.material import KeySet, private_pem
from edge.identity.protocol import Grant

__all__ = [
    "FORMAT",
    "IDENTITY_FILE",
    "Identity",
    "IdentityError",
    "prune",
    "read_identity",
    "write_enrolment",
    "write_renewal",
]

IDENTITY_FILE: Final = "identity.json"
FORMAT: Final = 1
_PRIVATE: Final = frozenset({"client.key", "signing.key", "e2e.key", "password"})


class IdentityError(Exception):
    """The folder is missing, incomplete or damaged; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class Identity:
    folder: Path
    version: int
    gateway_id: str
    estate: str | None
    name: str | None
    central_url: str
    broker_host: str
    broker_port: int
    username: str | None
    encrypt: str
    not_after: float
    renew_after: float
    kid: str
    central_key_id: str
    central_e2e_key_id: str | None
    has_password: bool
    has_api_ca: bool
    issued_at: float

    def file(self, name: str) -> Path:
        return self.folder / f"v{self.version}" / name

    @property
    def api_ca(self) -> Path | None:
        return self.file("api-ca.crt") if self.has_api_ca else None

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        del data["folder"]
        return {"format": FORMAT, **data}

    def signing_key(self) -> Ed25519PrivateKey:
        key = _private(self.file("signing.key"))
        if not isinstance(key, Ed25519PrivateKey):
            raise IdentityError(f"{self.file('signing.key')}: not an Ed25519 key")
        return key

    def e2e_key(self) -> X25519PrivateKey:
        key = _private(self.file("e2e.key"))
        if not isinstance(key, X25519PrivateKey):
            raise IdentityError(f"{self.file('e2e.key')}: not an X25519 key")
        return key


def _private(path: Path) -> object:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise IdentityError(f"{path}: cannot read: {exc.strerror}") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise IdentityError(f"{path}: not a PEM private key") from exc


def _public(path: Path) -> object:
    try:
        return serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise IdentityError(f"{path}: cannot read: {exc.strerror}") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise IdentityError(f"{path}: not a PEM public key") from exc


def _cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise IdentityError(f"{path}: cannot read: {exc.strerror}") from exc
    except ValueError as exc:
        raise IdentityError(f"{path}: not a PEM certificate") from exc


_FIELDS: Final = {
    "version": int,
    "gateway_id": str,
    "central_url": str,
    "broker_host": str,
    "broker_port": int,
    "encrypt": str,
    "not_after": float,
    "renew_after": float,
    "kid": str,
    "central_key_id": str,
    "has_password": bool,
    "has_api_ca": bool,
    "issued_at": float,
}
_OPTIONAL: Final = ("estate", "name", "username", "central_e2e_key_id")


def _parse(folder: Path, raw: Any) -> Identity:
    where = folder / IDENTITY_FILE
    if not isinstance(raw, dict):
        raise IdentityError(f"{where}: expected a JSON object")
    if raw.get("format") != FORMAT:
        raise IdentityError(f"{where}: format {raw.get('format')!r} is not {FORMAT} (a newer gatehouse?)")
    values: dict[str, Any] = {}
    for key, kind in _FIELDS.items():
        value: Any = raw.get(key)
        if kind is float and type(value) is int:
            value = float(value)
        if type(value) is not kind or (isinstance(value, float) and not math.isfinite(value)):
            raise IdentityError(f"{where}: {key} is missing or not a {kind.__name__}")
        values[key] = value
    for key in _OPTIONAL:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise IdentityError(f"{where}: {key} must be a string or null")
        values[key] = value
    if values["version"] < 1:
        raise IdentityError(f"{where}: version must be 1 or more")
    return Identity(folder=folder, **values)


def read_identity(folder: Path) -> Identity:
    """The current identity, with every file it names checked: what the uplink would load."""
    folder = Path(folder)
    where = folder / IDENTITY_FILE
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        hint = (
            ""
            if folder.is_dir()
            else " (the folder does not exist: run `gatehouse enroll URL TOKEN --dir ...`)"
        )
        raise IdentityError(f"{where}: no such file{hint}") from exc
    except OSError as exc:
        raise IdentityError(f"{where}: cannot read: {exc.strerror}") from exc
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise IdentityError(f"{where}: not valid JSON ({exc})") from exc
    identity = _parse(folder, raw)
    signing = identity.signing_key()
    if key_id(signing.public_key()) != identity.kid:
        raise IdentityError(f"{identity.file('signing.key')}: its key id is not {identity.kid}")
    identity.e2e_key()
    tls_key = _private(identity.file("client.key"))
    if not isinstance(tls_key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"{identity.file('client.key')}: not an EC key")
    if _cert(identity.file("client.crt")).public_key() != tls_key.public_key():
        raise IdentityError(f"{identity.file('client.crt')}: not the certificate of client.key")
    _cert(identity.file("ca.crt"))
    if not isinstance(_public(identity.file("central-signing.pub")), Ed25519PublicKey):
        raise IdentityError(f"{identity.file('central-signing.pub')}: not an Ed25519 public key")
    if identity.central_e2e_key_id is not None and not isinstance(
        _public(identity.file("central-e2e.pub")), X25519PublicKey
    ):
        raise IdentityError(f"{identity.file('central-e2e.pub')}: not an X25519 public key")
    for flag, name in ((identity.has_password, "password"), (identity.has_api_ca, "api-ca.crt")):
        if flag and not identity.file(name).is_file():
            raise IdentityError(f"{identity.file(name)}: no such file")
    return identity


# -- writing ------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _files(grant: Grant, keys: KeySet, api_ca: bytes | None) -> dict[str, bytes]:
    files = {
        "client.key": private_pem(keys.tls_key),
        "client.crt": grant.client_cert.encode("ascii"),
        "ca.crt": grant.ca_cert.encode("ascii"),
        "signing.key": private_pem(keys.signing_key),
        "central-signing.pub": grant.central_signing_key.encode("ascii"),
        "e2e.key": private_pem(keys.e2e_key),
    }
    if grant.central_e2e_key is not None:
        files["central-e2e.pub"] = grant.central_e2e_key.encode("ascii")
    if grant.password is not None:
        files["password"] = grant.password.encode("utf-8") + b"\n"
    if api_ca is not None:
        files["api-ca.crt"] = api_ca
    return files


def _write_version(target: Path, files: dict[str, bytes]) -> None:
    """Write ``target`` (a version folder) completely under a temporary name, then rename it."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, data in files.items():
            _write(tmp / name, data, private=name in _PRIVATE)
        _fsync_dir(tmp)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)


def _write_record(identity: Identity, folder: Path) -> None:
    tmp = folder / f".{IDENTITY_FILE}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _write(tmp, json.dumps(identity.record(), indent=2).encode("utf-8") + b"\n", private=False)
    os.replace(tmp, folder / IDENTITY_FILE)
    _fsync_dir(folder)


def _identity(
    folder: Path, version: int, grant: Grant, keys: KeySet, *, central_url: str, api_ca: bool, now: float
) -> Identity:
    e2e_id: str | None = None
    if grant.central_e2e_key is not None:
        public = serialization.load_pem_public_key(grant.central_e2e_key.encode("ascii"))
        assert isinstance(public, X25519PublicKey)  # parse_grant checked it
        e2e_id = encryption_key_id(public)
    signing = serialization.load_pem_public_key(grant.central_signing_key.encode("ascii"))
    assert isinstance(signing, Ed25519PublicKey)
    return Identity(
        folder=folder,
        version=version,
        gateway_id=grant.gateway_id,
        estate=grant.estate,
        name=grant.name,
        central_url=central_url,
        broker_host=grant.broker_host,
        broker_port=grant.broker_port,
        username=grant.username,
        encrypt=grant.encrypt,
        not_after=grant.not_after,
        renew_after=grant.renew_after,
        kid=keys.kid,
        central_key_id=key_id(signing),
        central_e2e_key_id=e2e_id,
        has_password=grant.password is not None,
        has_api_ca=api_ca,
        issued_at=now,
    )


def write_enrolment(
    folder: Path,
    grant: Grant,
    keys: KeySet,
    *,
    central_url: str,
    api_ca: bytes | None,
    now: float,
    replace: bool = False,
) -> Identity:
    """A new identity folder, all or nothing: built beside ``folder``, synced, then renamed.

    ``replace`` (``gatehouse enroll --force``) swaps out an existing folder; without it an
    existing folder is an error (``FileExistsError``) and stays as it was."""
    folder = Path(folder).absolute()
    if folder.exists() and not replace:
        raise FileExistsError(f"{folder} already exists (use --force to enrol again over it)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.enrolling.", dir=folder.parent))
    try:
        os.chmod(tmp, 0o700)
        identity = _identity(
            folder, 1, grant, keys, central_url=central_url, api_ca=api_ca is not None, now=now
        )
        _write_version(tmp / "v1", _files(grant, keys, api_ca))
        os.chmod(tmp / "v1", 0o700)
        _write_record(identity, tmp)
        old: Path | None = None
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.replaced.", dir=folder.parent))
            os.rename(folder, old / "identity")
        os.rename(tmp, folder)
        _fsync_dir(folder.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return identity


def write_renewal(current: Identity, grant: Grant, keys: KeySet, *, now: float) -> Identity:
    """The next version beside the current one, then ``identity.json`` switched to it.

    The current version's folder is left for :func:`prune`, once the uplink has moved over."""
    if grant.gateway_id != current.gateway_id:
        raise IdentityError(f"central renewed {grant.gateway_id!r}, not this gateway {current.gateway_id!r}")
    api_ca = current.api_ca.read_bytes() if current.api_ca is not None else None
    version = current.version + 1
    target = current.folder / f"v{version}"
    if target.exists():
        # Left by a renewal that crashed before the switch: it was never current, so never used.
        shutil.rmtree(target)
    identity = _identity(
        current.folder,
        version,
        grant,
        keys,
        central_url=current.central_url,
        api_ca=api_ca is not None,
        now=now,
    )
    _write_version(target, _files(grant, keys, api_ca))
    os.chmod(target, 0o700)
    _write_record(identity, current.folder)
    return identity


def prune(identity: Identity) -> list[str]:
    """Remove every version folder but the current one (and stray temporaries); their names."""
    removed = []
    for entry in identity.folder.iterdir():
        name = entry.name
        is_version = name.startswith("v") and name[1:].isdigit() and int(name[1:]) != identity.version
        if entry.is_dir() and (is_version or (name.startswith(".v") and "." in name[1:])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(name)
    return sorted(removed)
