"""The contenders' command lines, built from the rig: hdh-migrate, rclone, the Airflow operator, the store limits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hdh_migrate.dev import rig

from .shapes import CONTAINER, MiB

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv/bin/python")
HDH = str(ROOT / ".venv/bin/hdh-migrate")
BUCKET = "hdh-bench"
PYCACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hdh-bench" / "pycache"

# rclone's settings, the same parallelism as hdh-migrate's defaults (8 transfers, 8 MiB parts); chosen by
# trying rclone's defaults and a few variants on this rig (bench/README.md): these were its best.
RCLONE_COPY_FLAGS = ["--transfers", "8", "--checkers", "16", "--s3-chunk-size", "8M", "--s3-upload-concurrency", "4"]
RCLONE_CHECK_FLAGS = ["--checkers", "8"]
# rclone made to check what it sends: below --s3-upload-cutoff (200 MiB) it sends an object as one PUT with no
# integrity header when the source has no MD5 (Azure blobs uploaded in blocks: the bench's, and most of
# HDH's), so nothing checks those bytes in transit; from the cutoff up it uploads parts, each with a
# Content-MD5 the store verifies (seen in --dump headers). A cutoff at the part size puts every large object on
# that path: the closest rclone comes to hdh-migrate's per-part checks (it still records no whole-object hash)
RCLONE_CHECKED_CUTOFF = 8 * MiB
RCLONE_CHECKED_FLAGS = [*RCLONE_COPY_FLAGS, "--s3-upload-cutoff", f"{RCLONE_CHECKED_CUTOFF // MiB}M"]
# for the store's own write limit: rclone from tmpfs, no client-side MD5 pass, more parts in flight
RCLONE_LIMIT_FLAGS = ["--transfers", "8", "--checkers", "16", "--s3-chunk-size", "8M", "--s3-upload-concurrency", "8",
                      "--s3-disable-checksum"]


def ensure_rclone(log=print) -> str:  # type: ignore[no-untyped-def]
    """rclone from Debian (1.60), installed if missing (root is available here and in CI)."""
    found = shutil.which("rclone")
    if found:
        return found
    log("installing rclone (apt-get install rclone)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "rclone"], check=True, env=env, stdout=subprocess.DEVNULL)
    found = shutil.which("rclone")
    if not found:
        raise SystemExit("rclone could not be installed")
    return found


def container_sas_url(hours: int = 12) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    token = generate_container_sas(
        account_name=rig.AZURITE_ACCOUNT, container_name=CONTAINER, account_key=rig.AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True), expiry=datetime.now(UTC) + timedelta(hours=hours),
    )
    return f"http://{rig.HOST}:{rig.AZURE_PORT}/{rig.AZURITE_ACCOUNT}/{CONTAINER}?{token}"


class Env:
    """Environments and config files of one benchmark run (a temp folder removed at the end)."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="hdh-bench-"))
        self.rig = rig.env()
        self.sas_url = container_sas_url()
        self.rclone_conf = self.tmp / "rclone.conf"
        self.rclone_conf.write_text(
            "[az]\ntype = azureblob\n"
            f"sas_url = {self.sas_url}\n\n"
            "[s3]\ntype = s3\nprovider = Other\n"
            f"access_key_id = {self.rig['AWS_ACCESS_KEY_ID']}\n"
            f"secret_access_key = {self.rig['AWS_SECRET_ACCESS_KEY']}\n"
            f"endpoint = {self.rig['AWS_ENDPOINT_URL_S3']}\nregion = {self.rig['AWS_REGION']}\n"
            "force_path_style = true\nno_check_bucket = true\n"
        )
        (self.tmp / "airflow").mkdir()

    @staticmethod
    def python_env(env: dict[str, str]) -> dict[str, str]:
        """Python tools run with their bytecode cached, as a normal installation has it.

        This machine exports PYTHONDONTWRITEBYTECODE=1 and the venv holds no .pyc files, so every Python
        start would compile boto3, azure, pyarrow, pandas... from source (~1-2 s per start, more for
        Airflow). The cache goes to a folder of the benchmark's own (PYTHONPYCACHEPREFIX), not into .venv.
        """
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
        return env

    def hdh_env(self) -> dict[str, str]:
        env = dict(os.environ, **self.rig, HDH_MIGRATE_HOME=str(self.tmp / "hdh-home"))
        return self.python_env(env)

    def rclone_env(self) -> dict[str, str]:
        env = dict(os.environ, RCLONE_CONFIG=str(self.rclone_conf))
        env.pop("AWS_CA_BUNDLE", None)  # rclone's S3 backend fails on it here
        return env

    def airflow_env(self) -> dict[str, str]:
        env = self.python_env(dict(os.environ, AIRFLOW_HOME=str(self.tmp / "airflow"),
                                   AIRFLOW__CORE__LOAD_EXAMPLES="False"))
        env["AIRFLOW_CONN_BENCH_WASB"] = json.dumps(
            {"conn_type": "wasb", "extra": {"connection_string": self.rig["AZURE_STORAGE_CONNECTION_STRING"]}})
        env["AIRFLOW_CONN_BENCH_AWS"] = json.dumps({
            "conn_type": "aws", "login": self.rig["AWS_ACCESS_KEY_ID"], "password": self.rig["AWS_SECRET_ACCESS_KEY"],
            "extra": {"endpoint_url": self.rig["AWS_ENDPOINT_URL_S3"], "region_name": self.rig["AWS_REGION"]},
        })
        return env

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- command lines ------------------------------------------------------------------------------
    def hdh_copy(self, prefix: str, dest: str, work: str, extra: list[str] | None = None,
                 proto: str | None = None) -> list[str]:
        return [*_hdh(proto), "copy", f"azure://{CONTAINER}/{prefix}", f"s3://{BUCKET}/{dest}", "--json",
                "--no-progress", "--work-dir", str(self.tmp / work), *(extra or [])]

    def hdh_verify(self, prefix: str, dest: str, work: str, extra: list[str] | None = None,
                   proto: str | None = None) -> list[str]:
        return [*_hdh(proto), "verify", f"azure://{CONTAINER}/{prefix}", f"s3://{BUCKET}/{dest}", "--depth", "full",
                "--json", "--no-progress", "--work-dir", str(self.tmp / work), *(extra or [])]

    @staticmethod
    def rclone_copy(prefix: str, dest: str, flags: list[str] = RCLONE_COPY_FLAGS) -> list[str]:
        return ["rclone", "copy", f"az:{CONTAINER}/{prefix}", f"s3:{BUCKET}/{dest}", *flags]

    @staticmethod
    def rclone_check(prefix: str, dest: str) -> list[str]:
        return ["rclone", "check", "--download", f"az:{CONTAINER}/{prefix}", f"s3:{BUCKET}/{dest}",
                *RCLONE_CHECK_FLAGS]

    @staticmethod
    def rclone_write_limit(local: Path, dest: str) -> list[str]:
        return ["rclone", "copy", str(local), f"s3:{BUCKET}/{dest}", *RCLONE_LIMIT_FLAGS]

    def azure_read_limit(self, prefix: str, threads: int = 8) -> list[str]:
        return [PY, "-m", "bench.azread", self.sas_url, prefix, "--threads", str(threads)]

    @staticmethod
    def airflow_op(prefix: str, dest: str) -> list[str]:
        return [PY, "-m", "bench.airflow_op", CONTAINER, prefix, f"s3://{BUCKET}/{dest}"]


def _hdh(proto: str | None) -> list[str]:
    """The hdh-migrate command: the installed one, or a prototype copy of the package (``--proto DIR``)."""
    if not proto:
        return [HDH]
    code = f"import sys; sys.path.insert(0, {str(Path(proto).resolve())!r}); from hdh_migrate.cli import main; " \
        "sys.exit(main())"
    return [PY, "-c", code]


def _bucket_client():  # type: ignore[no-untyped-def]
    """A botocore client on the rig's S3 store (the bench bucket's admin key)."""
    from hdh_migrate.stores import S3Store, open_store
    from hdh_migrate.stores.settings import s3_settings_from_env

    store = open_store(f"s3://{BUCKET}/", s3=s3_settings_from_env(rig.env()))
    assert isinstance(store, S3Store)
    return store.client


def _objects(client, prefix: str = "") -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        yield from page.get("Contents", ())


def delete_prefix(prefix: str) -> int:
    """Remove what a measured run wrote (untimed), so the store does not grow run after run; the bytes removed."""
    client = _bucket_client()
    batch: list[dict[str, str]] = []
    removed = 0
    for o in _objects(client, prefix):
        removed += o["Size"]
        batch.append({"Key": o["Key"]})
        if len(batch) == 1000:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": batch, "Quiet": True})
            batch = []
    if batch:
        client.delete_objects(Bucket=BUCKET, Delete={"Objects": batch, "Quiet": True})
    return removed


def _weed_shell(script: str, timeout: float) -> str:
    """Run a ``weed shell`` script against the rig's master; its output. Raises OSError / TimeoutExpired."""
    weed = Path(PY).parent / "weed"
    return subprocess.run([str(weed), "shell", f"-master={rig.HOST}:9333"], input=script, text=True,
                          capture_output=True, timeout=timeout, check=False).stdout


def _volumes() -> list[dict[str, int]]:
    """The bench bucket's SeaweedFS volumes as ``weed shell volume.list`` reports them (size, deleted bytes)."""
    try:
        out = _weed_shell("volume.list\n", timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return []  # no answer: the caller waits no longer and compacts what it can
    vols = []
    for line in out.splitlines():
        m = re.search(r"volume Id:(\d+), Size:(\d+),.*Collection:([^,]*),.*FileCount:(\d+), DeleteCount:(\d+), "
                      r"DeletedByteCount:(\d+)", line)
        if m and m.group(3) == BUCKET:
            vols.append({"id": int(m.group(1)), "size": int(m.group(2)), "files": int(m.group(4)),
                         "deleted": int(m.group(6))})
    return vols


def clear_and_settle(prefix: str) -> str:
    """Remove what a measured run wrote under prefix, then settle the store (:func:`vacuum_store`) once
    those very bytes show as garbage on its volumes. Returns a log line."""
    return vacuum_store(deleted=delete_prefix(prefix))


def vacuum_store(deleted: int = 0, timeout: float = 120.0) -> str:
    """Leave SeaweedFS with no garbage before the next measurement (untimed, between repetitions).

    SeaweedFS only marks deleted data; without a compaction every run appends gigabytes (a complete bench run
    writes ~20 GB), volumes multiply, and the store's own CPU per write drifts from one repetition to the
    next (measured: 5.9 to 8.1 CPU-s for the same 512 MiB copy). ``volume.vacuum`` is SeaweedFS's own
    compaction, through ``weed shell``, and it is synchronous -- but an S3 DELETE is not: the filer queues
    the chunks and the volume server marks them deleted a few seconds later. A vacuum run right after
    :func:`delete_prefix` found little to compact, and what landed after it stayed until a later vacuum: the
    bench's next one, or the store's own periodic sweep, which may run mid-measurement (~6 CPU-s per GB). So: wait
    until the volumes hold no more than the bucket's live bytes and, after a delete of ``deleted`` bytes,
    show that much garbage (the master's volume list follows the volume server's heartbeats: right after a
    write it may not show the write yet, nor its deletion), compact, and poll until no garbage is left.
    Returns a log line."""
    t0 = time.monotonic()
    live = sum(o["Size"] for o in _objects(_bucket_client()))
    slack = 2 * 1024 * 1024
    while True:
        vols = _volumes()
        kept = sum(v["size"] - v["deleted"] for v in vols)
        landed = sum(v["deleted"] for v in vols) >= deleted - slack
        settled = landed and kept <= live + slack + 64 * sum(v["files"] for v in vols)
        if settled or not vols or time.monotonic() - t0 > timeout:  # no volume list: nothing to wait for
            break
        time.sleep(0.5)
    waited = time.monotonic() - t0
    garbage = sum(v["deleted"] for v in vols)
    script = "lock\nvolume.vacuum -garbageThreshold 0.01\nunlock\n"
    try:
        left = garbage if vols else slack + 1  # no volume list: vacuum once, blind
        for _ in range(5):
            if left <= slack:
                break
            _weed_shell(script, timeout=600)
            # the master's volume list learns of a compaction from the volume server's next heartbeat
            for _ in range(20):
                time.sleep(0.5)
                left = sum(v["deleted"] for v in _volumes())
                if left <= slack:
                    break
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not vacuum SeaweedFS ({exc}); carrying on"
    return (f"store settled: waited {waited:.1f} s for deletions to land, compacted {garbage / 2**20:.0f} MiB "
            f"({left / 2**20:.1f} MiB of garbage left), {time.monotonic() - t0:.1f} s in all")


if __name__ == "__main__":  # pragma: no cover - prints the rclone config path for manual experiments
    e = Env()
    print(e.rclone_conf, file=sys.stderr)
