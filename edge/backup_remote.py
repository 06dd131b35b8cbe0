"""Backups kept off the gateway: ``gatehouse backup --to s3://bucket/prefix`` (R3.4).

An SD card that dies takes a local backup folder with it, so archives can go to any
S3-compatible object store (AWS, MinIO, Ceph, Aliyun OSS, Tencent COS) through boto3, the
library every one of those stores documents. Credentials and the endpoint come from boto3's own
sources: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` (a non-AWS
store), ``AWS_DEFAULT_REGION``, or ``~/.aws/``; none of them is ever put on the command line.

The archive is made in a private temporary folder exactly as for a local target (it is already
encrypted), uploaded, and the temporary copy removed; ``--keep N`` rotates the remote prefix the
same way as a folder. ``gatehouse restore s3://bucket/prefix/gatehouse-….tar.gh`` downloads into a
private temporary folder first, then restores as from a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import GatehouseError

__all__ = ["RemoteError", "S3Target", "is_remote"]

_SCHEME = "s3://"


class RemoteError(GatehouseError):
    """The object store could not be reached or refused the request."""


def is_remote(target: str) -> bool:
    return target.startswith(_SCHEME)


def _client() -> Any:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RemoteError("s3:// targets need boto3: pip install 'gatehouse[s3]'") from exc
    return boto3.client("s3")


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


@dataclass(frozen=True, slots=True)
class S3Target:
    bucket: str
    prefix: str  # "" or ends with "/"

    @classmethod
    def parse(cls, url: str) -> S3Target:
        if not is_remote(url):
            raise RemoteError(f"not an s3:// address: {url!r}")
        bucket, _, prefix = url[len(_SCHEME) :].partition("/")
        if not bucket:
            raise RemoteError(f"no bucket in {url!r}: write s3://BUCKET/PREFIX")
        prefix = prefix.strip("/")
        return cls(bucket, prefix + "/" if prefix else "")

    def url(self, key: str = "") -> str:
        return f"{_SCHEME}{self.bucket}/{key}"

    def upload(self, path: Path) -> str:
        """Upload one archive under the prefix; returns its s3:// address."""
        key = self.prefix + path.name
        try:
            _client().upload_file(str(path), self.bucket, key)
        except _errors() as exc:
            raise RemoteError(f"upload to {self.url(key)} failed: {exc}") from exc
        return self.url(key)

    def archives(self, suffix: str) -> list[str]:
        """Keys of the archives under the prefix, oldest first (names carry the time)."""
        keys: list[str] = []
        try:
            listing = _client().get_paginator("list_objects_v2")
            for page in listing.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", ()):
                    key = str(item["Key"])
                    name = key[len(self.prefix) :]
                    if "/" not in name and name.startswith("gatehouse-") and name.endswith(suffix):
                        keys.append(key)
        except _errors() as exc:
            raise RemoteError(f"cannot list {self.url(self.prefix)}: {exc}") from exc
        return sorted(keys, key=lambda k: k.rsplit("/", 1)[-1])

    def rotate(self, keep: int, suffix: str) -> list[str]:
        """Delete all but the newest ``keep`` archives; returns the deleted addresses."""
        doomed = self.archives(suffix)[:-keep] if keep > 0 else []
        client = _client()
        for key in doomed:
            try:
                client.delete_object(Bucket=self.bucket, Key=key)
            except _errors() as exc:
                raise RemoteError(f"cannot delete {self.url(key)}: {exc}") from exc
        return [self.url(k) for k in doomed]


def download(url: str, into: Path) -> Path:
    """Fetch ``s3://bucket/key`` into the folder ``into``; returns the local file."""
    target = S3Target.parse(url)
    key = target.prefix.rstrip("/")
    if not key:
        raise RemoteError(f"{url!r} names a bucket, not an archive")
    local = into / key.rsplit("/", 1)[-1]
    try:
        _client().download_file(target.bucket, key, str(local))
    except _errors() as exc:
        raise RemoteError(f"download of {url} failed: {exc}") from exc
    return local
