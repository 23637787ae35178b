"""The local Airflow launcher (hdh_migrate.airflow_local): configuration, safety rails, and one real start.

The unit tests take milliseconds. ``test_start_run_and_stop`` starts a real Airflow 3 (SQLite, LocalExecutor)
on a free 127.0.0.1 port with a two-task DAG of its own, checks nothing listens beyond loopback, drives it
through the REST API like the demo does, and checks that stop() leaves no process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from hdh_migrate.dev import airflow_local
from tests.helpers import ROOT, beyond_loopback, remote_addresses

DAG_ID = "hdh_local_smoke"
SMOKE_DAG = textwrap.dedent(
    """
    from airflow.sdk import Param, dag, task


    @dag(dag_id="hdh_local_smoke", schedule=None, catchup=False,
         params={"greeting": Param("hello", type="string", description="What the first task returns.")})
    def hdh_local_smoke():
        @task
        def first(**ctx):
            return ctx["params"]["greeting"]

        @task
        def summary(value):
            import os
            return {"results_dir": os.environ["AIRFLOW_HOME"], "value": value}

        summary(first())


    hdh_local_smoke()
    """
)
# a table validated with worker processes spawned from a real Airflow task process, whose main script is
# the `airflow` command (under dag.test it is pytest's, which a worker can run again)
WORKERS_DAG_ID = "hdh_local_workers"
WORKERS_DAG = textwrap.dedent(
    """
    from airflow.sdk import dag, task


    @dag(dag_id="hdh_local_workers", schedule=None, catchup=False)
    def hdh_local_workers():
        @task
        def validate_in_two_processes(**ctx):
            import logging

            from hdh_migrate.validation.table import validate_table

            seen = []
            handler = logging.Handler()
            handler.emit = lambda record: seen.append(record.getMessage())
            logging.getLogger("hdh_migrate.validation").addHandler(handler)
            logging.getLogger("hdh_migrate.validation").setLevel(logging.INFO)
            url, suite = ctx["params"]["url"], ctx["params"]["suite"]
            r = validate_table("IR_BEN_R", suite, url, url, data_docs_dir=None, jobs=2, group_bytes=1)
            return {"success": r["success"], "files": r["source"]["files"],
                    "spread": [m for m in seen if "runs on 2 processes" in m]}

        validate_in_two_processes()


    hdh_local_workers()
    """
)


def test_airflow_env_is_local_and_consistent(tmp_path: Path) -> None:
    env = airflow_local.airflow_env(tmp_path, 18080, dags_folder=tmp_path / "dags")
    assert env["AIRFLOW_HOME"] == str(tmp_path.resolve())
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "18080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:////")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str((tmp_path / "dags").resolve())
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(ROOT / "plugins")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["GX_ANALYTICS_ENABLED"] == "false"
    # the secrets are generated once per home, kept private, and reused (all components must agree)
    again = airflow_local.airflow_env(tmp_path, 18081)
    assert again["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert (tmp_path / airflow_local.SECRETS_FILE).stat().st_mode & 0o077 == 0


def test_airflow_env_drops_inherited_airflow_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://elsewhere/db")
    env = airflow_local.airflow_env(tmp_path, 18080)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:")


def test_http_only_talks_to_loopback() -> None:
    with pytest.raises(airflow_local.AirflowLocalError, match=r"only 127\.0\.0\.1"):
        airflow_local.http("GET", "http://example.org/")


def test_stop_session_refuses_our_own_session() -> None:
    with pytest.raises(airflow_local.AirflowLocalError, match="refusing"):
        airflow_local.stop_session(os.getsid(0))
    with pytest.raises(airflow_local.AirflowLocalError, match="refusing"):
        airflow_local.stop_session(1)


def test_attach_finds_nothing_in_an_empty_home(tmp_path: Path) -> None:
    assert airflow_local.attach(tmp_path) is None


@pytest.mark.airflow
@pytest.mark.slow
def test_start_run_and_stop(tmp_path: Path, rig_env: dict[str, str], azure_container) -> None:
    from hdh_migrate.dev.seed import seed_table
    from hdh_migrate.validation.schema import get_table

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(SMOKE_DAG)
    (dags / f"{WORKERS_DAG_ID}.py").write_text(WORKERS_DAG)
    table_url = f"azure://{azure_container.container}/t"
    seed_table(table_url, get_table("IR_BEN_R"), 1600, seed=3, rows_per_file=800, store=azure_container)
    home = tmp_path / "home"
    af = airflow_local.start(home, None, dags_folder=dags)
    try:
        with pytest.raises(airflow_local.AirflowLocalError, match="already runs"):
            airflow_local.start(home, None, dags_folder=dags)
        seconds = af.wait_healthy(timeout=240)
        print(f"local Airflow healthy {seconds:.1f} s after start")
        assert airflow_local.attach(home) is not None

        # every component runs, and nothing listens beyond 127.0.0.1 (no log servers on 0.0.0.0)
        assert set(af.running()) == set(airflow_local.COMPONENTS) and all(af.running().values())
        if shutil.which("ss"):
            assert any(f"127.0.0.1:{af.port}" in line for line in airflow_local.listening_sockets(af.sid))
            assert airflow_local.non_loopback_listeners(af.sid) == []

        # REST: the token works, connections and pools can be created (idempotently)
        assert af.token().count(".") == 2
        af.set_connections_from_rig()
        af.set_connections_from_rig()
        conn = af.api("GET", "/connections/hdh_s3_dest")
        assert conn["conn_type"] == "aws" and json.loads(conn["extra"])["endpoint_url"] == "http://127.0.0.1:8333"
        assert af.api("GET", "/connections/hdh_azure_source")["conn_type"] == "wasb"
        assert af.ensure_pool("hdh_smoke_pool", 3) is True
        assert af.ensure_pool("hdh_smoke_pool", 5) is False
        assert af.api("GET", "/pools/hdh_smoke_pool")["slots"] == 3

        af.wait_dag(DAG_ID, timeout=180)
        run_id = af.trigger(DAG_ID, {"greeting": "bonjour"})
        state = af.wait_run(DAG_ID, run_id, timeout=300)
        tis = af.task_instances(DAG_ID, run_id)
        assert state == "success", [(t["task_id"], t["state"]) for t in tis]
        assert sorted(t["task_id"] for t in tis) == ["first", "summary"]
        assert af.xcom(DAG_ID, run_id, "summary") == {"results_dir": str(home.resolve()), "value": "bonjour"}
        assert af.xcom(DAG_ID, run_id, "first", key="nothing_here") is None
        assert (home / "logs").is_dir()

        # worker processes spawned from a task process (validate_processes > 1) start and validate
        af.wait_dag(WORKERS_DAG_ID, timeout=180)
        run_id = af.trigger(WORKERS_DAG_ID, {"url": table_url, "suite": str(ROOT / "expectations" / "IR_BEN_R.json")})
        state = af.wait_run(WORKERS_DAG_ID, run_id, timeout=300)
        assert state == "success", af.task_instances(WORKERS_DAG_ID, run_id)
        done = af.xcom(WORKERS_DAG_ID, run_id, "validate_in_two_processes")
        assert done["success"] and done["files"] == 2 and len(done["spread"]) == 2, done

        # after a run, no component holds a socket beyond loopback (no telemetry, no update check)
        # (the probe itself is proven in test_rig, where a server with telemetry on makes it fail)
        remote = remote_addresses(airflow_local._session_pids(af.sid))
        assert not beyond_loopback(remote), f"Airflow's components hold sockets beyond loopback: {remote}"
    finally:
        sid = af.sid
        af.stop()
    assert airflow_local._session_pids(sid) == []
    assert not airflow_local.port_open(af.port)
    assert airflow_local.attach(home) is None
