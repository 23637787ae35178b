"""The production deployment files: the compose file validates, secrets stay out of the image."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCKER = ROOT / "docker"


def _compose() -> list[str]:
    """`docker compose` (v2 plugin) where present, else Debian's `docker-compose` (v1)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed (scripts/bootstrap installs it in CI)")


def _env_file(tmp_path: Path, **drop: bool) -> Path:
    text = (DOCKER / "env.example").read_text()
    text = text.replace("AIRFLOW_FERNET_KEY=\n", "AIRFLOW_FERNET_KEY=test-fernet\n")
    text = text.replace("AIRFLOW_JWT_SECRET=\n", "AIRFLOW_JWT_SECRET=test-jwt\n")
    for key in drop:
        text = re.sub(rf"^{key}=.*$", "", text, flags=re.M)
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_compose_file_is_valid_and_has_every_component(tmp_path: Path) -> None:
    cmd = [*_compose(), "-f", str(DOCKER / "compose.yaml"), "--env-file", str(_env_file(tmp_path))]
    r = subprocess.run([*cmd, "config"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    services = subprocess.run([*cmd, "--profile", "rig", "config", "--services"], capture_output=True, text=True)
    names = set(services.stdout.split())
    assert {
        "postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "airflow-init",
        "azurite",
        "seaweedfs",
    } <= names
    assert "CeleryExecutor" in r.stdout and "hdh_dest_store" in r.stdout


def test_compose_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    cmd = [
        *_compose(),
        "-f",
        str(DOCKER / "compose.yaml"),
        "--env-file",
        str(_env_file(tmp_path, AIRFLOW_FERNET_KEY=True)),
        "config",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "set AIRFLOW_FERNET_KEY" in (r.stderr + r.stdout)


def test_image_is_the_pinned_airflow_and_holds_no_secret() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    pinned = re.search(r'"apache-airflow==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"ARG AIRFLOW_VERSION={pinned}" in dockerfile and "FROM apache/airflow:${AIRFLOW_VERSION}" in dockerfile
    env_lines = [line for line in dockerfile.splitlines() if line.strip().startswith(("ENV", "ARG"))]
    assert not any(re.search(r"(KEY|SECRET|PASSWORD|TOKEN)\s*=", line, re.I) for line in env_lines)
    assert (ROOT / ".gitignore").read_text().count("docker/.env") == 1
