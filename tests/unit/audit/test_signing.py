"""Report signing keys as a deployment hands them over: which are accepted, which are refused and why,
and what a verifier needs (a trusted public key, never a secret)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from hdh_migrate.audit import bundle
from hdh_migrate.audit.signing import (
    KEY_ENV,
    KEY_FILE_ENV,
    TRUSTED_ENV,
    ReportKeyError,
    TrustedKeys,
    generate_key_pair,
    load_signing_key,
    parse_signing_key,
    require_trusted,
    sign,
    verify_report,
)


def _bundle(folder: Path, key) -> Path:
    """A minimal signed bundle: report.json and the files the signature covers."""
    folder.mkdir()
    doc = sign({"dataset": "dcir", "decision": {"outcome": "cut_over"}, "counts": {"listed": 3}}, key)
    (folder / "report.json").write_text(json.dumps(doc))
    bundle.finish(
        folder, key, {"dataset": "dcir", "outcome": "cut_over", "run_id": "r", "actor": "a", "generated_at": "t"}
    )
    return folder / "report.json"


def _trust(*publics: bytes) -> TrustedKeys:
    t = TrustedKeys()
    for i, pem in enumerate(publics):
        t.add_pem(pem, f"key {i}")
    return t


def test_a_shared_secret_of_the_old_kind_no_longer_signs() -> None:
    with pytest.raises(ReportKeyError) as info:
        load_signing_key(env={KEY_ENV: "a-long-random-hmac-secret"})
    assert "old kind (HMAC)" in str(info.value) and "hdh-migrate report keygen" in info.value.hint
    assert "a-long-random-hmac-secret" not in str(info.value) + info.value.hint  # never echoes the value


def test_keys_that_are_not_ed25519_or_are_encrypted_are_refused_by_name() -> None:
    rsa = generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ReportKeyError, match="not Ed25519"):
        parse_signing_key(rsa, "the Connection 'hdh_report_key'")
    locked = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(ReportKeyError, match="encrypted"):
        parse_signing_key(locked, "the file k.pem")


def test_the_key_file_wins_over_the_variable_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    private, _ = generate_key_pair()
    (tmp_path / "k.pem").write_bytes(private)
    key = load_signing_key(env={KEY_FILE_ENV: str(tmp_path / "k.pem"), KEY_ENV: "ignored"})
    assert key is not None and key.source == f"the file {tmp_path / 'k.pem'}"
    assert "PRIVATE" not in repr(key) and private.decode() not in repr(key)
    with pytest.raises(ReportKeyError, match="cannot read the report signing key file"):
        load_signing_key(env={KEY_FILE_ENV: str(tmp_path / "absent.pem")})
    assert load_signing_key(env={}) is None


def test_a_deployment_that_pins_keys_refuses_to_sign_with_another() -> None:
    key = parse_signing_key(generate_key_pair()[0], "test")
    pinned = _trust(generate_key_pair()[1])
    with pytest.raises(ReportKeyError, match="not among the public keys this deployment trusts"):
        require_trusted(key, pinned)
    require_trusted(key, _trust(key.public_pem))
    require_trusted(key, None)  # nothing pinned: nothing to check against


def test_verifying_needs_a_trusted_public_key_and_rotated_keys_keep_working(tmp_path: Path) -> None:
    old = parse_signing_key(generate_key_pair()[0], "2026 key")
    new = parse_signing_key(generate_key_pair()[0], "2027 key")
    report = _bundle(tmp_path / "b", old)
    assert not verify_report(report).ok  # the public key inside the bundle is not trusted by itself
    assert "not among the trusted keys" in verify_report(report, trusted=_trust(new.public_pem)).problems[0]
    both = verify_report(report, trusted=_trust(new.public_pem, old.public_pem))
    assert both.ok and both.key_id == old.key_id and both.files_checked == 3 and not both.old_kind


def test_trusted_keys_from_a_folder_and_a_file_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "trusted"
    folder.mkdir()
    publics = [generate_key_pair()[1] for _ in range(3)]
    (folder / "a.pem").write_bytes(publics[0] + publics[1])  # two keys in one file
    (folder / "notes.txt").write_text("not a key, not read")
    (tmp_path / "c.pem").write_bytes(publics[2])
    monkeypatch.setenv(TRUSTED_ENV, f"{folder}:{tmp_path / 'c.pem'}")
    trusted = TrustedKeys.from_env()
    assert trusted is not None and len(trusted.keys) == 3
    (tmp_path / "bad.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ReportKeyError, match="unreadable public key"):
        TrustedKeys.from_paths([tmp_path / "bad.pem"])


def test_files_the_report_does_not_list_are_covered_by_the_signed_sums(tmp_path: Path) -> None:
    key = parse_signing_key(generate_key_pair()[0], "test")
    report = _bundle(tmp_path / "one", key)
    (report.parent / "VERIFY.txt").write_text((report.parent / "VERIFY.txt").read_text().replace("OK", "ok"))
    v = verify_report(report, trusted=_trust(key.public_pem))
    assert not v.ok and v.problems == ["VERIFY.txt does not match its SHA-256 in SHA256SUMS: it was altered"]
    (report.parent / "public-key.pem").unlink()
    v = verify_report(report, trusted=_trust(key.public_pem))
    assert "public-key.pem is listed in SHA256SUMS but missing from the bundle" in v.problems
