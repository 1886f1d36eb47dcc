"""Where recordings are kept: a local folder or S3-compatible storage, optionally encrypted at rest (AES-256-GCM).

Encryption fails closed: with `encrypt = true` and no usable key the vault
cannot be built (the engine stops with a ConfigError before recording
anything), and a file that does not decrypt with the configured key is
reported, never served.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kernel.config import RecordingSettings
from kernel.exceptions import CallCenterError, ConfigError

MAGIC = b"CCR1"


class VaultError(CallCenterError):
    """A recording cannot be read back: missing, or not decryptable with the configured key."""


class Storage(Protocol):
    """Bytes by key."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


class LocalStorage:
    """A folder on this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise VaultError(f"recording key {key!r} leaves the storage folder")
        return path

    def put(self, key: str, data: bytes) -> None:
        """Write atomically (a reader never sees half a file)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(path.suffix + ".part")
        part.write_bytes(data)
        os.replace(part, path)

    def get(self, key: str) -> bytes:
        """The stored bytes."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise VaultError(f"recording file {key} is missing from {self.root}") from exc

    def delete(self, key: str) -> None:
        """Remove (already gone is fine)."""
        self._path(key).unlink(missing_ok=True)


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, Ceph...), through boto3 (`pip install boto3`)."""

    def __init__(self, bucket: str, prefix: str, endpoint: str | None) -> None:
        try:
            import boto3
        except ImportError as exc:
            raise ConfigError("recordings.storage = 's3' needs boto3: pip install boto3") from exc
        if not bucket:
            raise ConfigError("recordings.s3_bucket: set the bucket for storage = 's3'")
        self.bucket, self.prefix = bucket, prefix
        self.s3 = boto3.client("s3", endpoint_url=endpoint)

    def put(self, key: str, data: bytes) -> None:
        """Upload."""
        self.s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def get(self, key: str) -> bytes:
        """Download."""
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except self.s3.exceptions.NoSuchKey as exc:
            raise VaultError(f"recording {key} is missing from s3://{self.bucket}/{self.prefix}") from exc

    def delete(self, key: str) -> None:
        """Remove."""
        self.s3.delete_object(Bucket=self.bucket, Key=self.prefix + key)


def cipher(settings: RecordingSettings) -> AESGCM | None:
    """The configured key, or None when encryption is off; ConfigError when it is on and the key is missing or malformed."""
    if not settings.encrypt:
        return None
    if settings.key is None:
        raise ConfigError(
            "recordings.encrypt is on but recordings.key is missing (set CALLCENTER_RECORDINGS_KEY): nothing will be recorded"
        )
    try:
        key = base64.b64decode(settings.key.get_secret_value(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            "recordings.key: not base64 (make one with: python3 -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')"
        ) from exc
    if len(key) != 32:
        raise ConfigError(f"recordings.key: {len(key)} bytes; AES-256 needs 32")
    return AESGCM(key)


class Vault:
    """Stores and reads recordings, encrypting when a key is configured."""

    def __init__(self, storage: Storage, aead: AESGCM | None) -> None:
        self.storage, self.aead = storage, aead

    @property
    def encrypted(self) -> bool:
        """Whether what it stores is encrypted."""
        return self.aead is not None

    def put(self, key: str, data: bytes) -> None:
        """Store, encrypted when configured (the key name is bound in, so files cannot be swapped)."""
        if self.aead is not None:
            nonce = os.urandom(12)
            data = MAGIC + nonce + self.aead.encrypt(nonce, data, key.encode())
        self.storage.put(key, data)

    def get(self, key: str) -> bytes:
        """The recording in clear; VaultError if it is missing or does not decrypt."""
        data = self.storage.get(key)
        if not data.startswith(MAGIC):
            if self.aead is not None:
                raise VaultError(f"recording {key} is not encrypted although encryption is on: refusing it")
            return data
        if self.aead is None:
            raise VaultError(f"recording {key} is encrypted and no recordings.key is configured")
        try:
            return self.aead.decrypt(data[4:16], data[16:], key.encode())
        except InvalidTag as exc:
            raise VaultError(f"recording {key} does not decrypt with the configured key (wrong key, or the file was altered)") from exc

    def delete(self, key: str) -> None:
        """Remove."""
        self.storage.delete(key)


def open_vault(settings: RecordingSettings, folder: Path) -> Vault:
    """The vault the configuration asks for."""
    storage: Storage = (
        S3Storage(settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint) if settings.storage == "s3" else LocalStorage(folder)
    )
    return Vault(storage, cipher(settings))
