"""Shared fixtures: the real rig (Azurite + SeaweedFS on 127.0.0.1) and fresh containers/buckets.

The rig is started once per test session (idempotent: a running rig is reused) and left running, so a
developer's next run starts instantly; ``hdh-migrate rig down`` stops it. Each test gets its own
container and bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from hdh_migrate.dev import rig
from hdh_migrate.stores import AzureBlobStore, S3Store
from hdh_migrate.stores.settings import azure_settings_from_env, s3_settings_from_env
from tests.helpers import close_state

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
def azure_container(rig_env: dict[str, str]) -> Iterator[AzureBlobStore]:
    store = AzureBlobStore(azure_settings_from_env(), _name("src"))
    store.create_container()
    yield store
    store.delete_container()


@pytest.fixture
def s3_bucket(rig_env: dict[str, str]) -> Iterator[S3Store]:
    """A fresh bucket, deleted afterwards (SeaweedFS gives every bucket volumes of its own)."""
    store = S3Store(s3_settings_from_env(), _name("dst"))
    store.create_bucket()
    yield store
    store.delete_bucket()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, rig_env: dict[str, str]) -> Path:
    """An Airflow home with a migrated SQLite DB and the rig's Connections, set before airflow is imported."""
    if "airflow" in sys.modules:
        pytest.fail("airflow was imported before its home was configured")
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "HDH_MIGRATE_WORK_DIR": str(home / "hdh-migrate"),
        "HDH_MIGRATE_DB_URL": f"sqlite:///{home / 'state.db'}",
        "AIRFLOW_CONN_HDH_AZURE_SOURCE": json.dumps(
            {"conn_type": "wasb", "extra": {"connection_string": rig_env["AZURE_STORAGE_CONNECTION_STRING"]}}
        ),
        "AIRFLOW_CONN_HDH_S3_DEST": json.dumps(
            {
                "conn_type": "aws",
                "login": rig_env["AWS_ACCESS_KEY_ID"],
                "password": rig_env["AWS_SECRET_ACCESS_KEY"],
                "extra": {
                    "endpoint_url": rig_env["AWS_ENDPOINT_URL_S3"],
                    "region_name": "us-east-1",
                    "hdh_s3_provider": "seaweedfs",
                },
            }
        ),
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT / "plugins"))
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return home


@pytest.fixture(scope="session")
def dagbag(airflow_home: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


# -- state databases: SQLite, and PostgreSQL when a server answers on 127.0.0.1:5432 ----------------------
PG_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"
PG_DB = "hdh_migrate_test"


def _pg_reason() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError as exc:
        return f"no PostgreSQL server on 127.0.0.1:5432 ({exc.strerror or exc}); the SQLite variant still runs"
    try:
        engine = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            if not conn.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'").scalar():
                conn.exec_driver_sql(f"CREATE DATABASE {PG_DB}")
        engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        return f"PostgreSQL on 127.0.0.1:5432 refused the test setup: {str(exc).splitlines()[0]}"
    return None


_PG_SKIP = _pg_reason()


@pytest.fixture(name="state_url", params=["sqlite", "postgresql"])
def state_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty state database URL of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
        yield url
        close_state(url)
        return
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{PG_SERVER}/{PG_DB}", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = f"{PG_SERVER}/{PG_DB}?options=-csearch_path%3D{schema}"
    yield url
    close_state(url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture(name="sqlite_url")
def sqlite_url_fixture(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    yield url
    close_state(url)
