"""Helpers shared by the tests: run the real CLI (in a process, or in this one), make deterministic bytes,
migrate a small dataset the way the DAG does, build a validation result, close a state database."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import random
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hdh_migrate.audit import state as state_mod
from hdh_migrate.audit.signing import KEY_ENV, TRUSTED_ENV, SigningKey, generate_key_pair, parse_signing_key
from hdh_migrate.audit.state import StateStore
from hdh_migrate.cli.main import main
from hdh_migrate.runs.context import RunContext
from hdh_migrate.runs.pair import open_pair
from hdh_migrate.runs.pipeline import MigrationRequest, run_migration
from hdh_migrate.stores import AzureBlobStore, S3Store
from hdh_migrate.transfer.copier import CopyOptions

ROOT = Path(__file__).resolve().parents[1]  # the checkout
CLI = str(Path(sys.executable).parent / "hdh-migrate")


@functools.cache
def _test_key_pair() -> tuple[bytes, Path]:
    """One Ed25519 key pair per test session: the private PEM, and the public key's file (the pinned one)."""
    private, public = generate_key_pair()
    folder = Path(tempfile.mkdtemp(prefix="hdh-test-keys-"))
    (folder / "report-signing-key.pub.pem").write_bytes(public)
    return private, folder / "report-signing-key.pub.pem"


def signing_key() -> SigningKey:
    """The test signing key, as the runs layer takes it."""
    return parse_signing_key(_test_key_pair()[0], "the test key")


def public_key_path() -> Path:
    return _test_key_pair()[1]


def report_key_env() -> dict[str, str]:
    """What a deployment sets to sign reports (the private key's PEM) and to check them (the pinned public
    key), for the test key."""
    private, public = _test_key_pair()
    return {KEY_ENV: private.decode("ascii"), TRUSTED_ENV: str(public)}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `hdh-migrate ARGS` as a user would; returns the finished process (stdout/stderr as text)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False)


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def remote_addresses(pids: list[int]) -> set[str]:
    """The remote ends of every inet socket these processes (and their children) hold open."""
    import psutil

    out: set[str] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            with contextlib.suppress(psutil.Error):  # a short-lived task process that ended meanwhile
                out |= {c.raddr.ip for c in p.net_connections(kind="inet") if c.raddr}
    return out


def beyond_loopback(addresses: set[str]) -> set[str]:
    import ipaddress

    return {a for a in addresses if not ipaddress.ip_address(a).is_loopback}


def close_state(url: str) -> None:
    """Dispose of the state database opened for url (open_state keeps one engine per URL per process)."""
    store = state_mod._stores.pop(url, None)
    if store is not None:
        store.close()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def hdh(*args: str, env: dict[str, str] | None = None) -> Result:
    """`hdh-migrate ARGS` in this process (the same main() the console script runs, without paying ~3 s of
    interpreter start and SDK imports per call on this machine); run_cli is used where the process matters."""
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Result(code, out.getvalue(), err.getvalue())


def gx_result(table: str, success: bool = True, rows: int = 1200) -> dict[str, Any]:
    """The shape hdh_migrate.validation.table.validate_table returns (built here: GX itself is tested elsewhere)."""

    def side(url: str, ok: bool) -> dict[str, Any]:
        return {
            "url": url,
            "success": ok,
            "files": 2,
            "batches": 2,
            "expectations": {"evaluated": 14, "failed": 0 if ok else 1},
            "failed_expectations": []
            if ok
            else [
                {"expectation": "expect_column_values_to_not_be_null", "column": "prs_nat_ref", "unexpected_count": 3}
            ],
            "metrics": {
                "row_count": rows,
                "file_count": 2,
                "fingerprint": "9f3c2a1b7d6e5f40",
                "columns": {"prs_act_qte": {"type": "int32", "min": 1, "max": 48, "sum": 5210}},
            },
        }

    return {
        "table": table,
        "suite": f"expectations/{table}.json",
        "source": side("azure://snds/er_prs_f", True),
        "destination": side("s3://hdh/er_prs_f", success),
        "comparison": {
            "equal": success,
            "differences": []
            if success
            else [{"metric": "null_count", "column": "prs_nat_ref", "source": 0, "destination": 3}],
        },
        "success": success,
        "data_docs": "/tmp/data_docs/index.html",
        "data_docs_pages": {},
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def migrate(
    st: StateStore,
    dataset: str,
    src: AzureBlobStore,
    dst: S3Store,
    work: Path,
    *,
    validation_required: bool = False,
    actor: str = "alice",
    run_id: str = "migrate-1",
) -> dict[str, Any]:
    """What hdh_migrate_dataset does, through the same steps (``hdh-migrate migrate``): register, copy,
    verify, record."""
    pair = open_pair(f"azure://{src.container}/snds", f"s3://{dst.container}/migrated", workers=4)
    request = MigrationRequest(validation_required=validation_required)
    record = run_migration(pair, RunContext(work, run_id, actor, dataset), CopyOptions(workers=4), request, state=st)
    return record.to_json()


def seed(src: AzureBlobStore, n: int = 6) -> dict[str, bytes]:
    blobs = {f"snds/dcir/part-{i:03d}.parquet": payload(2000 + i, seed=i) for i in range(n)}
    for name, data in blobs.items():
        src.put(name, data)
    return blobs
