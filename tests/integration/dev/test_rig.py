"""The rig commands a newcomer uses: up (idempotent), env, status."""

from __future__ import annotations

import io
import shlex

from hdh_migrate.dev import rig
from hdh_migrate.sizes import MiB
from hdh_migrate.transfer.progress import Progress
from tests.helpers import beyond_loopback, remote_addresses, run_cli


def test_rig_up_is_idempotent_and_env_is_exportable(rig_env) -> None:
    before = rig.status()
    r = run_cli("rig", "up")
    assert r.returncode == 0, r.stderr
    after = rig.status()
    assert {k: v["pid"] for k, v in after.items()} == {k: v["pid"] for k, v in before.items()}  # nothing restarted
    env = run_cli("rig", "env")
    exported = dict(shlex.split(line)[1].split("=", 1) for line in env.stdout.splitlines())
    assert exported["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:8333"
    assert "BlobEndpoint=http://127.0.0.1:10000/" in exported["AZURE_STORAGE_CONNECTION_STRING"]
    status = run_cli("rig", "status")
    assert status.returncode == 0 and "azurite" in status.stdout and "seaweedfs" in status.stdout


def test_rig_servers_listen_on_loopback_only(rig_env) -> None:
    import subprocess

    ports = {rig.AZURE_PORT, rig.S3_PORT, 8888, 9333, 9340}  # Azurite; SeaweedFS S3, filer, master, volume
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    ours = [line.split()[3] for line in out.splitlines() if int(line.split()[3].rsplit(":", 1)[1]) in ports]
    assert {int(a.rsplit(":", 1)[1]) for a in ours} == ports, f"the rig's listening sockets were not found: {ours}"
    for local in ours:
        assert local.startswith("127.0.0.1:"), local


def test_progress_line_shows_objects_bytes_rate_and_eta() -> None:
    p = Progress(10, 100 * MiB, stream=io.StringIO())
    p.add_bytes(25 * MiB)
    p.object_done()
    line = p.line()
    assert "1/10 objects" in line and "25.0 MiB/100.0 MiB" in line and "MiB/s" in line and "ETA" in line


def _free_port() -> int:
    """A free loopback port, for a second Azurite beside the session's rig."""
    import socket

    with socket.socket() as s:
        s.bind((rig.HOST, 0))
        return int(s.getsockname()[1])


def test_a_second_azurite_answers_and_rig_down_stops_it_and_purges_its_data(tmp_path, monkeypatch) -> None:
    """The benchmark keeps its 100,000-blob shape in an Azurite of its own (bench/scalestore.py), recorded in
    the rig's state so that `rig down` stops it too. Run in a rig dir of its own: the session's rig stays up."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("HDH_RIG_DIR", str(tmp_path))
    port = _free_port()
    name = rig.EXTRA_DATA[0]
    svc = rig.azurite_service(port, tmp_path / name, name=name)
    proc = rig.start(svc, tmp_path, on_spawn=lambda pid: rig.record(name, pid))
    try:
        assert rig.recorded(name) == proc.pid
        client = BlobServiceClient.from_connection_string(rig.azure_connection_string(port))
        client.create_container("second")
        client.get_blob_client("second", "a.txt").upload_blob(b"hello")
        assert client.get_blob_client("second", "a.txt").download_blob().readall() == b"hello"
        assert (tmp_path / name).is_dir() and (tmp_path / f"{name}.log").exists()
        rig.down(purge=True)
        assert proc.wait(timeout=10) is not None
        assert not rig.port_open(port)
        assert not (tmp_path / name).exists()
        assert rig.recorded(name) is None
    finally:
        rig.kill_group(proc.pid)


def test_rig_servers_reach_no_address_but_loopback(tmp_path, rig_env) -> None:
    """Azurite and SeaweedFS both send telemetry out by default: Azurite probes the cloud metadata address
    (169.254.169.254) within a second or two of starting, `weed mini` reports to telemetry.seaweedfs.com.
    The rig turns both off. A fresh Azurite started the rig's way is watched from its first seconds; the
    session's SeaweedFS is watched while it serves a write and a read."""
    import time

    from azure.storage.blob import BlobServiceClient

    from hdh_migrate.stores import S3Store
    from hdh_migrate.stores.settings import s3_settings_from_env

    s3 = S3Store(s3_settings_from_env(rig_env), "telemetry-probe")
    s3.create_bucket()
    s3.client.put_object(Bucket="telemetry-probe", Key="a.txt", Body=b"hello")
    assert s3.client.get_object(Bucket="telemetry-probe", Key="a.txt")["Body"].read() == b"hello"
    weed = rig.status()["seaweedfs"]["pid"]
    # a SeaweedFS this rig did not start (another checkout's rig on the same port) cannot be vouched for
    assert isinstance(weed, int), (
        "the SeaweedFS on 127.0.0.1:8333 was started by another rig, so its flags are not this checkout's: "
        "stop it (`hdh-migrate rig down` in the checkout that started it) and run the tests again"
    )
    port = _free_port()
    svc = rig.azurite_service(port, tmp_path / "azurite-telemetry", name="azurite-telemetry")
    proc = rig.start(svc, tmp_path)
    try:
        client = BlobServiceClient.from_connection_string(rig.azure_connection_string(port))
        client.create_container("quiet")
        client.get_blob_client("quiet", "a.txt").upload_blob(b"hello")
        seen: set[str] = set()
        deadline = time.monotonic() + 4  # measured: an Azurite with telemetry on opens 5 sockets out within 1.5 s
        while time.monotonic() < deadline:
            seen |= remote_addresses([proc.pid, weed])
            time.sleep(0.2)
        assert seen, "no socket of the servers was seen at all: the probe itself is broken"
        assert not beyond_loopback(seen), f"the rig's servers opened sockets beyond loopback: {seen}"
    finally:
        rig.kill_group(proc.pid)
