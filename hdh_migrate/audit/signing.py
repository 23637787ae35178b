"""The report's signatures: Ed25519, so that checking a report needs no secret.

Whoever holds an HMAC key can both check and forge; with Ed25519 the private key signs (it stays where the
deployment keeps secrets: a read-only mounted file, an Airflow Connection, a secrets backend) and anyone
holding the published public key checks. Two signatures come out of one key:

- ``report.json`` embeds ``signature``: Ed25519 over the canonical JSON of every other field (sorted keys,
  no spaces, UTF-8). That body holds the SHA-256 of ``report.html`` and of the evidence files.
- ``SHA256SUMS.sig`` is the detached signature of ``SHA256SUMS``, which lists the SHA-256 of every file of
  the bundle (report.json included, Data Docs included). An auditor without hdh-migrate checks it with
  ``openssl pkeyutl -verify -rawin`` and ``sha256sum -c`` (``VERIFY.txt`` in the bundle says how).

A key is named by its id, ``sha256:`` + the SHA-256 of its public key (DER SubjectPublicKeyInfo): public,
and what ``openssl pkey -pubin -outform DER | sha256sum`` prints. Verification trusts keys pinned by the
deployment (``HDH_MIGRATE_TRUSTED_KEYS``) or given (``--public-key``), never the copy in the bundle alone:
several at once, so keys can rotate; each report names its key.

Reports of the old kind (HMAC-SHA256, before 2026-12) still verify with their shared secret, and the verdict
says they are of the old kind. New reports are never signed with HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hdh_migrate.audit.ledger import canonical
from hdh_migrate.errors import ConfigError, PermanentError
from hdh_migrate.transfer.checksums import file_sha256

#: the private key in PEM (PKCS#8), or (old kind, for verifying only) the HMAC secret
KEY_ENV = "HDH_MIGRATE_REPORT_KEY"
#: a file holding the private key in PEM (a read-only mount); preferred to KEY_ENV
KEY_FILE_ENV = "HDH_MIGRATE_REPORT_KEY_FILE"
#: the public keys the deployment trusts: PEM files or folders of them, separated by os.pathsep
TRUSTED_ENV = "HDH_MIGRATE_TRUSTED_KEYS"
ALGORITHM = "Ed25519"
LEGACY_ALGORITHM = "HMAC-SHA256"
COVERS = "canonical JSON of every other field (sorted keys, no spaces, UTF-8)"
SUMS = "SHA256SUMS"
SUMS_SIG = "SHA256SUMS.sig"
PUBLIC_KEY_FILE = "public-key.pem"
KEYGEN_HINT = "make a key pair with `hdh-migrate report keygen --out DIR` (the private key stays secret, 0600)"


class ReportKeyError(ConfigError):
    code = "report_key"


class ReportInvalidError(PermanentError):
    code = "report_invalid"


# -- keys ------------------------------------------------------------------------------------------------
def public_key_id(public: Ed25519PublicKey) -> str:
    """``sha256:`` + SHA-256 of the DER SubjectPublicKeyInfo (what ``openssl pkey -pubin -outform DER``
    writes): a public name, reproducible with standard tools."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key and the public facts about it. Its repr never shows the key."""

    private: Ed25519PrivateKey = field(repr=False)
    source: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return public_key_id(self.public)

    @property
    def public_pem(self) -> bytes:
        return public_pem(self.public)

    def sign_bytes(self, data: bytes) -> bytes:
        return self.private.sign(data)


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new key pair: (private PEM, PKCS#8 unencrypted; public PEM)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, public_pem(private.public_key())


def parse_signing_key(data: bytes | str, source: str) -> SigningKey:
    """The private key from its PEM text; a typed error that says what was found instead (never the value)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    raw = raw.strip() + b"\n"
    if not raw.startswith(b"-----BEGIN"):
        raise ReportKeyError(
            f"the report signing key in {source} is not a PEM private key: it looks like a shared secret of the "
            "old kind (HMAC), which can forge reports as well as check them, and no longer signs",
            hint=KEYGEN_HINT + f"; put the private key's PEM in {source}",
        )
    try:
        private = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        why = "it is encrypted" if "encrypted" in str(exc).lower() or "password" in str(exc).lower() else "unreadable"
        raise ReportKeyError(f"the report signing key in {source} cannot be loaded ({why})", hint=KEYGEN_HINT) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ReportKeyError(
            f"the report signing key in {source} is a {type(private).__name__.removeprefix('_')}, not Ed25519",
            hint=KEYGEN_HINT,
        )
    return SigningKey(private, source)


def load_signing_key(
    *, file: str | Path | None = None, env_var: str = KEY_ENV, env: dict[str, str] | None = None
) -> SigningKey | None:
    """The signing key from ``file``, else ``$HDH_MIGRATE_REPORT_KEY_FILE``, else ``$<env_var>`` (PEM text).
    None when none is set; a ReportKeyError when one is set but unusable."""
    env = os.environ if env is None else env
    path = file or env.get(KEY_FILE_ENV)
    if path:
        try:
            return parse_signing_key(Path(path).read_bytes(), f"the file {path}")
        except OSError as exc:
            raise ReportKeyError(
                f"cannot read the report signing key file {path} ({exc.strerror or exc})",
                hint=f"mount the private key there (read-only) or unset {KEY_FILE_ENV}",
            ) from None
    value = env.get(env_var)
    return parse_signing_key(value, f"${env_var}") if value else None


def require_trusted(key: SigningKey, trusted: TrustedKeys | None) -> None:
    """Refuse to sign with a key the deployment does not trust: nobody could check the report."""
    if trusted is not None and trusted.keys and key.key_id not in trusted.keys:
        raise ReportKeyError(
            f"the report signing key ({key.key_id}) is not among the public keys this deployment trusts "
            f"({', '.join(sorted(trusted.keys))})",
            hint=f"add its public key to {TRUSTED_ENV}, or sign with the key that is pinned there",
        )


@dataclass
class TrustedKeys:
    """Public keys by id (several at once: a rotated key keeps checking the reports it signed)."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def add_pem(self, data: bytes, source: str) -> None:
        blocks = [b"-----BEGIN" + b for b in data.split(b"-----BEGIN")[1:]]
        if not blocks:
            raise ReportKeyError(f"{source} holds no PEM public key", hint="give the report's public-key.pem")
        for block in blocks:
            try:
                public = serialization.load_pem_public_key(block)
            except ValueError:
                raise ReportKeyError(f"{source} holds an unreadable public key", hint="give a PEM public key") from None
            if not isinstance(public, Ed25519PublicKey):
                raise ReportKeyError(f"{source} holds a public key that is not Ed25519", hint=KEYGEN_HINT)
            kid = public_key_id(public)
            self.keys[kid], self.sources[kid] = public, source

    def add_path(self, path: str | Path) -> None:
        p = Path(path)
        files = sorted(q for q in p.iterdir() if q.suffix in (".pem", ".pub")) if p.is_dir() else [p]
        for f in files:
            try:
                self.add_pem(f.read_bytes(), str(f))
            except OSError as exc:
                raise ReportKeyError(f"cannot read the public key {f} ({exc.strerror or exc})") from None

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> TrustedKeys:
        trusted = cls()
        for p in paths:
            trusted.add_path(p)
        return trusted

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TrustedKeys | None:
        """The deployment's pinned keys, or None when ``$HDH_MIGRATE_TRUSTED_KEYS`` is not set."""
        value = (os.environ if env is None else env).get(TRUSTED_ENV)
        return cls.from_paths(p for p in value.split(os.pathsep) if p) if value else None


# -- signing -----------------------------------------------------------------------------------------------
def body_bytes(doc: dict[str, Any]) -> bytes:
    """The bytes the embedded signature covers."""
    return canonical({k: v for k, v in doc.items() if k != "signature"}).encode("utf-8")


def sign(doc: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k != "signature"}
    return body | {
        "signature": {
            "algorithm": ALGORITHM,
            "key_id": key.key_id,
            "value": base64.b64encode(key.sign_bytes(body_bytes(body))).decode("ascii"),
            "covers": COVERS,
        }
    }


def write_sums(folder: Path, key: SigningKey) -> list[str]:
    """SHA256SUMS over every file of the bundle (``sha256sum -c`` format, paths relative to the folder),
    then its detached Ed25519 signature, raw 64 bytes (``openssl pkeyutl -verify -rawin -sigfile``)."""
    names = sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name not in (SUMS, SUMS_SIG)
    )
    body = "".join(f"{file_sha256(str(folder / n))}  {n}\n" for n in names).encode("utf-8")
    (folder / SUMS).write_bytes(body)
    (folder / SUMS_SIG).write_bytes(key.sign_bytes(body))
    return names


# -- verifying ---------------------------------------------------------------------------------------------
@dataclass
class ReportVerdict:
    ok: bool
    problems: list[str]
    dataset: str | None = None
    outcome: str | None = None
    ledger_anchor: tuple[int, str] | None = None
    algorithm: str | None = None
    key_id: str | None = None
    files_checked: int = 0

    @property
    def old_kind(self) -> bool:
        return self.algorithm == LEGACY_ALGORITHM


def verify_report(
    path: str | Path, *, trusted: TrustedKeys | None = None, hmac_key: bytes | None = None
) -> ReportVerdict:
    """The embedded signature, the hash of every file the report lists, and (Ed25519 reports) the signed
    SHA256SUMS over the whole bundle. The files must sit next to the report, as in the bundle."""
    path = Path(path)
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        why = f"{path} is not a readable report ({type(exc).__name__}: {exc}): it was altered or truncated"
        return ReportVerdict(False, [why])
    sig = doc.get("signature") if isinstance(doc.get("signature"), dict) else {}
    algorithm = sig.get("algorithm")
    if algorithm == LEGACY_ALGORITHM:
        problems = _hmac_problems(doc, sig, hmac_key)
        checked = 0
    else:
        public, problems = _public_key(sig, trusted)
        if public is not None:
            problems += _ed25519_problems(doc, sig, public)
            sums_problems, checked = _sums_problems(path.parent, public)
            problems += sums_problems
        else:
            checked = 0
    problems += _file_problems(doc, path.parent)
    ledger = doc.get("ledger") or {}
    anchor = (int(ledger["head_seq"]), str(ledger["head_hash"])) if ledger.get("head_seq") else None
    outcome = (doc.get("decision") or {}).get("outcome")
    return ReportVerdict(
        not problems, problems, doc.get("dataset"), outcome, anchor, algorithm, sig.get("key_id"), checked
    )


def _public_key(sig: dict[str, Any], trusted: TrustedKeys | None) -> tuple[Ed25519PublicKey | None, list[str]]:
    if sig.get("algorithm") != ALGORITHM or not isinstance(sig.get("value"), str):
        return None, [f"the report has no {ALGORITHM} signature"]
    if trusted is None or not trusted.keys:
        return None, [
            f"no trusted public key to check it with: give --public-key KEY.pem or set {TRUSTED_ENV} "
            f"(the report names its key {sig.get('key_id')})"
        ]
    public = trusted.keys.get(str(sig.get("key_id")))
    if public is None:
        return None, [
            f"the report was signed with key {sig.get('key_id')}, which is not among the trusted keys "
            f"({', '.join(sorted(trusted.keys))})"
        ]
    return public, []


def _ed25519_problems(doc: dict[str, Any], sig: dict[str, Any], public: Ed25519PublicKey) -> list[str]:
    try:
        public.verify(base64.b64decode(sig["value"], validate=True), body_bytes(doc))
    except (InvalidSignature, ValueError):
        return ["the signature does not match the content: the report was altered after signing"]
    return []


def _sums_problems(folder: Path, public: Ed25519PublicKey) -> tuple[list[str], int]:
    sums, sig = folder / SUMS, folder / SUMS_SIG
    if not sums.is_file() or not sig.is_file():
        return [f"{SUMS} or {SUMS_SIG} is missing next to the report: the bundle is incomplete"], 0
    body = sums.read_bytes()
    try:
        public.verify(sig.read_bytes(), body)
    except InvalidSignature:
        return [f"{SUMS_SIG} does not match {SUMS}: the list of the bundle's files was altered"], 0
    problems, count = [], 0
    for line in body.decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        p = folder / name
        count += 1
        if not p.is_file():
            problems.append(f"{name} is listed in {SUMS} but missing from the bundle")
        elif file_sha256(str(p)) != digest:
            problems.append(f"{name} does not match its SHA-256 in {SUMS}: it was altered")
    if "report.json" not in {ln.partition("  ")[2] for ln in body.decode("utf-8", "replace").splitlines()}:
        problems.append(f"{SUMS} does not list report.json: it belongs to another bundle")
    return problems, count


def _hmac_problems(doc: dict[str, Any], sig: dict[str, Any], key: bytes | None) -> list[str]:
    if not key:
        return [
            f"the report is of the old kind ({LEGACY_ALGORITHM}): checking it needs the shared secret it was "
            f"signed with, in ${KEY_ENV} or --key-env"
        ]
    if not isinstance(sig.get("value"), str):
        return [f"the report has no {LEGACY_ALGORITHM} signature"]
    problems = []
    if sig.get("key_id") != legacy_key_id(key):
        problems.append(f"the report was signed with key {sig.get('key_id')}, the key given is {legacy_key_id(key)}")
    mac = hmac.new(key, body_bytes(doc), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, sig["value"]):
        problems.append(
            "the signature does not match the content: the report was altered after signing (or signed with "
            "another key)"
        )
    return problems


def legacy_key_id(key: bytes) -> str:
    """How reports of the old kind named their HMAC key."""
    return "sha256:" + hashlib.sha256(b"hdh-migrate report key id\0" + key).hexdigest()[:16]


def _file_problems(doc: dict[str, Any], folder: Path) -> list[str]:
    problems = []
    for label, f in (doc.get("files") or {}).items():
        p = folder / str(f.get("name", ""))
        if not p.is_file():
            problems.append(f"{label} file {p.name} is missing next to the report")
        elif file_sha256(str(p)) != f.get("sha256"):
            problems.append(f"{label} file {p.name} does not match the SHA-256 recorded in the report: it was altered")
    return problems


__all__ = [
    "ALGORITHM",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "LEGACY_ALGORITHM",
    "PUBLIC_KEY_FILE",
    "SUMS",
    "SUMS_SIG",
    "TRUSTED_ENV",
    "ReportInvalidError",
    "ReportKeyError",
    "ReportVerdict",
    "SigningKey",
    "TrustedKeys",
    "generate_key_pair",
    "legacy_key_id",
    "load_signing_key",
    "parse_signing_key",
    "public_key_id",
    "require_trusted",
    "sign",
    "verify_report",
    "write_sums",
]
