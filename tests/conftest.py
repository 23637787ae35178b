"""Shared fixtures: the real rig (Azurite + SeaweedFS on 127.0.0.1) and fresh containers/buckets.

The rig is started once per test session (idempotent: a running rig is reused) and left running, so a
developer's next run starts instantly; ``hdh-migrate rig down`` stops it. Each test gets its own
container and bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from hdh_migrate import rig
from hdh_migrate.config import azure_settings_from_env, s3_settings_from_env
from hdh_migrate.stores import AzureBlobStore, S3Store

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def rig_env() -> dict[str, str]:
    """Start the rig and export its settings into this process (as `eval "$(hdh-migrate rig env)"`)."""
    rig.up(quiet=True)
    values = rig.env()
    os.environ.update(values)
    return values


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def azure_container(rig_env: dict[str, str]) -> AzureBlobStore:
    store = AzureBlobStore(azure_settings_from_env(), _name("src"))
    store.create_container()
    return store


@pytest.fixture
def s3_bucket(rig_env: dict[str, str]) -> S3Store:
    store = S3Store(s3_settings_from_env(), _name("dst"))
    store.create_bucket()
    return store


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
