"""Connection settings for both sides, read the way each ecosystem does it.

Azure: ``AZURE_STORAGE_CONNECTION_STRING``, or ``AZURE_STORAGE_ACCOUNT_URL`` / ``AZURE_STORAGE_ACCOUNT``
with ``AZURE_STORAGE_KEY`` or ``AZURE_STORAGE_SAS_TOKEN`` (the Azure CLI's variables).
S3: the standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_REGION``), plus per-endpoint behaviour from a
provider profile (``HDH_S3_PROVIDER``, see ``data/s3_providers.json``) that ``HDH_S3_*`` variables
override one by one. The Airflow layer builds the same dataclasses from Connections instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

from hdh_migrate.errors import ConfigError, CredentialsError


class Secret:
    """A value that never shows up in a repr, a log line or an exception message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class AzureSettings:
    connection_string: Secret | None = None
    account_url: str | None = None
    account_key: Secret | None = None
    sas_token: Secret | None = None

    def describe(self) -> str:
        """Where we connect, for messages: the endpoint, never the credential."""
        if self.account_url:
            return self.account_url
        if self.connection_string:
            parts = dict(p.split("=", 1) for p in self.connection_string.get().split(";") if "=" in p)
            if "BlobEndpoint" in parts:
                return parts["BlobEndpoint"]
            if "AccountName" in parts:
                return f"account {parts['AccountName']}"
        return "Azure Blob Storage"


def azure_settings_from_env(env: Mapping[str, str] | None = None) -> AzureSettings:
    env = os.environ if env is None else env
    if env.get("AZURE_STORAGE_CONNECTION_STRING"):
        return AzureSettings(connection_string=Secret(env["AZURE_STORAGE_CONNECTION_STRING"]))
    url = env.get("AZURE_STORAGE_ACCOUNT_URL")
    if not url and env.get("AZURE_STORAGE_ACCOUNT"):
        url = f"https://{env['AZURE_STORAGE_ACCOUNT']}.blob.core.windows.net"
    if not url:
        raise CredentialsError(
            "no Azure credentials found",
            hint="set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_URL with AZURE_STORAGE_KEY "
            'or AZURE_STORAGE_SAS_TOKEN (on the local rig: eval "$(hdh-migrate rig env)")',
        )
    key = env.get("AZURE_STORAGE_KEY")
    sas = env.get("AZURE_STORAGE_SAS_TOKEN")
    return AzureSettings(
        account_url=url,
        account_key=Secret(key) if key else None,
        sas_token=Secret(sas) if sas else None,
    )


@cache
def provider_profiles() -> dict[str, dict[str, Any]]:
    text = resources.files("hdh_migrate").joinpath("data/s3_providers.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


_CHOICES = {
    "addressing_style": ("path", "virtual", "auto"),
    "request_checksum_calculation": ("when_required", "when_supported"),
    "response_checksum_validation": ("when_required", "when_supported"),
    "part_checksum": ("md5", "sha256", "crc32c"),
    "sse": ("none", "sse-c", "aws:kms", "AES256"),
}


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    provider: str = "generic"
    addressing_style: str = "path"
    request_checksum_calculation: str = "when_required"
    response_checksum_validation: str = "when_required"
    part_checksum: str = "md5"
    supports_object_lock: bool = False
    #: SHA-256 of every request body in its SigV4 signature. Off by default: every body hdh-migrate sends
    #: carries Content-MD5 or x-amz-checksum-*, which the store verifies, so the signed hash would be a
    #: second full hash of each part for nothing. botocore already skips it on https; this setting makes
    #: plain-http endpoints behave the same (documented botocore option ``payload_signing_enabled``).
    payload_signing: bool = False
    max_copy_object_size: int = 5 * 1024**3
    #: the most parts a multipart upload may have (S3's limit; a provider profile may say fewer)
    max_parts: int = 10_000
    #: server-side encryption: none, sse-c (customer key), aws:kms (key id), AES256 (store-managed)
    sse: str = "none"
    sse_c_key: Secret | None = field(default=None, repr=False)
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"S3 setting {name}={getattr(self, name)!r} is not one of {allowed}")
        if self.sse == "sse-c":
            if not self.sse_c_key:
                raise ConfigError(
                    "SSE-C is selected but no customer key is set",
                    hint="set HDH_S3_SSE_C_KEY (base64 of 32 random bytes) or HDH_S3_SSE_C_KEY_FILE",
                )
            sse_c_raw(self)  # validates the key shape
        if self.sse == "aws:kms" and not self.kms_key_id:
            raise ConfigError("SSE-KMS is selected but no key id is set", hint="set HDH_S3_SSE_KMS_KEY_ID")

    def describe(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region})"

    def with_overrides(self, **kw: Any) -> S3Settings:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def sse_c_raw(settings: S3Settings) -> bytes:
    assert settings.sse_c_key is not None
    try:
        raw = base64.b64decode(settings.sse_c_key.get(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            "the SSE-C key must be the base64 encoding of exactly 32 bytes (AES-256)",
            hint="generate one with: head -c 32 /dev/urandom | base64",
        )
    return raw


def sse_c_fingerprint(settings: S3Settings) -> str | None:
    """A fingerprint an auditor can record and compare, from which the key cannot be recovered."""
    if settings.sse != "sse-c" or not settings.sse_c_key:
        return None
    return "sha256:" + hashlib.sha256(b"hdh-migrate sse-c fingerprint\0" + sse_c_raw(settings)).hexdigest()[:32]


def encryption_summary(settings: S3Settings) -> dict[str, Any]:
    """What the audit report records about encryption: mode and key identity, never key material."""
    return {
        "mode": settings.sse,
        "kms_key_id": settings.kms_key_id if settings.sse == "aws:kms" else None,
        "sse_c_key_fingerprint": sse_c_fingerprint(settings),
    }


def s3_settings(
    *,
    provider: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> S3Settings:
    """Start from a provider profile, then apply explicit overrides (None values are ignored)."""
    name = provider or "generic"
    profiles = provider_profiles()
    if name not in profiles:
        raise ConfigError(f"unknown S3 provider profile {name!r}", hint=f"choose one of {sorted(profiles)}")
    base = {k: v for k, v in profiles[name].items() if k in S3Settings.__dataclass_fields__}
    merged = {**base, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return S3Settings(provider=name, **merged)


def _bool(text: str | None) -> bool | None:
    if text is None:
        return None
    return text.strip().lower() in ("1", "true", "yes", "on")


def s3_settings_from_env(env: Mapping[str, str] | None = None) -> S3Settings:
    env = os.environ if env is None else env
    key_file = env.get("HDH_S3_SSE_C_KEY_FILE")
    sse_key = env.get("HDH_S3_SSE_C_KEY")
    if key_file and not sse_key:
        try:
            with open(key_file) as f:
                sse_key = f.read().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read HDH_S3_SSE_C_KEY_FILE: {exc.strerror}") from None
    secret = env.get("AWS_SECRET_ACCESS_KEY")
    token = env.get("AWS_SESSION_TOKEN")
    max_copy = env.get("HDH_S3_MAX_COPY_OBJECT_SIZE")
    return s3_settings(
        provider=env.get("HDH_S3_PROVIDER"),
        overrides={
            "endpoint_url": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            "access_key_id": env.get("AWS_ACCESS_KEY_ID"),
            "secret_access_key": Secret(secret) if secret else None,
            "session_token": Secret(token) if token else None,
            "addressing_style": env.get("HDH_S3_ADDRESSING_STYLE"),
            "request_checksum_calculation": env.get("HDH_S3_REQUEST_CHECKSUM_CALCULATION")
            or env.get("AWS_REQUEST_CHECKSUM_CALCULATION"),
            "response_checksum_validation": env.get("HDH_S3_RESPONSE_CHECKSUM_VALIDATION")
            or env.get("AWS_RESPONSE_CHECKSUM_VALIDATION"),
            "part_checksum": env.get("HDH_S3_PART_CHECKSUM"),
            "supports_object_lock": _bool(env.get("HDH_S3_OBJECT_LOCK")),
            "payload_signing": _bool(env.get("HDH_S3_PAYLOAD_SIGNING")),
            "max_copy_object_size": int(max_copy) if max_copy else None,
            "sse": env.get("HDH_S3_SSE") or ("sse-c" if sse_key else None),
            "sse_c_key": Secret(sse_key) if sse_key else None,
            "kms_key_id": env.get("HDH_S3_SSE_KMS_KEY_ID"),
        },
    )
