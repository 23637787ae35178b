"""The demo (``./scripts/demo``): a realistic health dataset migrated by the Airflow DAG, end to end, locally.

1. start the rig (Azurite on 127.0.0.1:10000 as the Azure source, SeaweedFS on 127.0.0.1:8333 as the
   sovereign S3 destination) and create the destination bucket;
2. seed the four SNDS tables of ``hdh_migrate/data/snds_schemas.json`` into Azurite (about 285 MB of
   Parquet by default; skipped when the same data is already there);
3. start a local Airflow 3 (``var/airflow``: SQLite, LocalExecutor, everything on 127.0.0.1), create the
   two Connections and trigger ``hdh_migrate_dataset`` through the REST API;
4. follow the run to its end and print where to look: the UI, the admin login, the run's state and the
   results folder the ``summary`` task returned.

Airflow then keeps running for the UI until Ctrl-C (``--no-wait`` stops it and exits at once, ``--detach``
leaves it running). The rig is shared and always left running: ``hdh-migrate rig down`` stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hdh_migrate.dev import airflow_local, rig
from hdh_migrate.errors import HdhMigrateError
from hdh_migrate.sizes import human_bytes

DAG_ID = "hdh_migrate_dataset"
SCHEMA = Path(__file__).resolve().parents[1] / "data" / "snds_schemas.json"
# Rows per table at --size medium, roughly the warehouse's proportions (prestations dominate):
# about 30 + 195 + 43 + 15 = 285 MB of Parquet. T_MCOaaC is 1:1 with T_MCOaaB (<= its rows).
TABLE_ROWS = {"IR_BEN_R": 500_000, "ER_PRS_F": 1_500_000, "T_MCOaaB": 300_000, "T_MCOaaC": 300_000}
SIZES = {"small": 0.1, "medium": 1.0, "large": 4.0}
ROWS_PER_FILE = 250_000
# The pools the DAG's tasks run in (created when missing; a task in a missing pool is never scheduled).
# LocalExecutor runs at most 4 tasks at once here (parallelism 4 on 2 cores).
POOLS = {
    "hdh_source_store": (2, "tasks that list the Azure source (inventory)"),
    "hdh_dest_store": (4, "copy and verify shards: caps the shards in flight against the S3 store"),
}
SEED = 20240501


def say(msg: str = "") -> None:
    print(msg, file=sys.stderr, flush=True)


def step(msg: str) -> None:
    say(f"==> {msg}")


class DemoError(RuntimeError):
    pass


def _cli() -> str:
    return str(Path(sys.executable).parent / "hdh-migrate")


def _run(argv: list[str], *, env: dict[str, str], capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, text=True, check=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if capture else None
    )


def seed_available(env: dict[str, str]) -> bool:
    r = subprocess.run([_cli(), "seed", "--help"], env=env, capture_output=True, text=True, check=False)
    return r.returncode == 0 and "--rows" in r.stdout


def _listing(container: str, prefix: str) -> dict[str, int]:
    """{name: size} under azure://container/prefix on the rig; creates the container if missing."""
    from hdh_migrate.errors import ContainerNotFoundError
    from hdh_migrate.stores import AzureBlobStore, open_store
    from hdh_migrate.stores.settings import azure_settings_from_env

    store = open_store(f"azure://{container}/", azure=azure_settings_from_env(rig.env()))
    assert isinstance(store, AzureBlobStore)  # create_container is the rig's, not the Store interface's
    try:
        store.check_access()
    except ContainerNotFoundError:
        store.create_container()
    return {o.name: o.size for o in store.list(prefix)}


def seed(
    container: str, prefix: str, scale: float, state_dir: Path, env: dict[str, str], *, force: bool = False
) -> dict[str, Any]:
    """Seed the four SNDS tables under azure://container/prefix; skip when the same data is already there."""
    rows = {t: max(1000, int(n * scale)) for t, n in TABLE_ROWS.items()}
    universe = rows["IR_BEN_R"]
    plan = {
        "container": container,
        "prefix": prefix,
        "rows": rows,
        "universe": universe,
        "seed": SEED,
        "rows_per_file": ROWS_PER_FILE,
    }
    stamp = state_dir / "seed.json"
    try:
        previous = json.loads(stamp.read_text())
    except (OSError, ValueError):
        previous = None
    if (
        not force
        and previous
        and previous.get("plan") == plan
        and previous.get("objects") == _listing(container, prefix)
    ):
        total = sum(previous["objects"].values())
        say(
            f"    already seeded: {len(previous['objects'])} files, {human_bytes(total)} "
            f"under azure://{container}/{prefix} (--reseed to write them again)"
        )
        return previous
    _listing(container, prefix)  # creates the container
    for table, n in rows.items():
        t0 = time.monotonic()
        argv = [
            _cli(),
            "seed",
            "--schema",
            str(SCHEMA),
            "--table",
            table,
            "--rows",
            str(n),
            "--universe",
            str(universe),
            "--seed",
            str(SEED),
            "--rows-per-file",
            str(ROWS_PER_FILE),
            "--json",
            f"azure://{container}/{prefix}",
        ]
        r = _run(argv, env=env, capture=True)
        if r.returncode != 0:
            raise DemoError(f"hdh-migrate seed failed for {table} (exit {r.returncode}); command: {' '.join(argv)}")
        try:
            written = sum(int(x.get("bytes", 0)) for x in json.loads(r.stdout))
            size = human_bytes(written)
        except (ValueError, TypeError, AttributeError):
            size = "?"
        say(f"    {table:9} {n:>10,} rows  {size:>10}  in {time.monotonic() - t0:5.1f} s")
    objects = _listing(container, prefix)
    state_dir.mkdir(parents=True, exist_ok=True)
    result = {"plan": plan, "objects": objects}
    stamp.write_text(json.dumps(result, indent=1))
    say(f"    seeded {len(objects)} files, {human_bytes(sum(objects.values()))} under azure://{container}/{prefix}")
    return result


def _results_path(value: Any) -> str | None:
    """The results folder in the summary task's return value (a path, or a dict holding one)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("results_dir", "results_folder", "results_path", "work_dir", "results", "path", "folder"):
            if isinstance(value.get(key), str):
                return str(value[key])
        for key, v in value.items():
            if isinstance(v, str) and ("dir" in key or "path" in key or "folder" in key):
                return v
    return None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    root = airflow_local.project_root()
    p = argparse.ArgumentParser(
        prog="scripts/demo",
        description="A synthetic SNDS dataset moved from Azurite to SeaweedFS by the Airflow DAG "
        "hdh_migrate_dataset, all on 127.0.0.1; prints the UI address, login and results.",
    )
    p.add_argument(
        "--size",
        choices=sorted(SIZES),
        default=os.environ.get("HDH_DEMO_SIZE", "medium"),
        help="dataset size: small ~30 MB, medium ~285 MB (default), large ~1.1 GB",
    )
    p.add_argument("--reseed", action="store_true", help="write the source data again even if already there")
    p.add_argument("--container", default="snds-demo", help="Azure container of the source (default snds-demo)")
    p.add_argument("--source-prefix", default=None, help="prefix of the tables in the container (default snds/SIZE/)")
    p.add_argument("--bucket", default="hdh-demo", help="destination bucket (default hdh-demo)")
    p.add_argument(
        "--dest-prefix",
        default=None,
        help="destination prefix (default snds/SIZE/; a second run then shows that already-copied objects are skipped)",
    )
    p.add_argument(
        "--shard-max-objects",
        type=int,
        default=2,
        help="the DAG's shard_max_objects Param, if it has one (default 2: several shards to watch)",
    )
    p.add_argument("--verify", choices=("quick", "full", "both"), default="full", help="the DAG's verify Param")
    p.add_argument("--max-parallel", type=int, default=4, help="the DAG's max_parallel Param (default 4)")
    p.add_argument("--part-size-mib", type=int, default=8, help="the DAG's part_size_mib Param (default 8)")
    p.add_argument(
        "--validate-processes",
        type=int,
        default=2,
        help="the DAG's validate_processes Param (default 2: ER_PRS_F, the largest table, validates last and "
        "alone; a second process uses the other core)",
    )
    p.add_argument("--dry-run", action="store_true", help="trigger the DAG with dry_run=true")
    p.add_argument("--home", default=str(root / "var" / "airflow"), help="AIRFLOW_HOME (default var/airflow)")
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("HDH_DEMO_PORT", "0")) or None,
        help="API/UI port (default 8080 when free, else any free port)",
    )
    p.add_argument("--dags-folder", default=str(root / "dags"), help="DAGs folder (default dags/)")
    p.add_argument("--timeout", type=float, default=3600, help="give up on the run after this many seconds")
    wait = p.add_mutually_exclusive_group()
    wait.add_argument(
        "--no-wait",
        action="store_true",
        default=os.environ.get("HDH_DEMO_NO_WAIT", "") not in ("", "0"),
        help="stop Airflow and exit right after the report (also HDH_DEMO_NO_WAIT=1)",
    )
    wait.add_argument(
        "--detach",
        action="store_true",
        help="exit after the report but leave Airflow running (stop it with the printed command)",
    )
    args = p.parse_args(argv)
    # one prefix per size: a smaller dataset seeded over a bigger one would leave its extra files behind
    args.source_prefix = args.source_prefix or f"snds/{args.size}/"
    args.dest_prefix = args.dest_prefix or f"snds/{args.size}/"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.monotonic()
    dags = Path(args.dags_folder).resolve()
    dag_file = dags / f"{DAG_ID}.py"
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false", **rig.env())
    af: airflow_local.LocalAirflow | None = None
    keep_running = False
    code = 130
    try:
        step("rig: Azurite (Azure source) and SeaweedFS (S3 destination) on 127.0.0.1")
        r = _run([_cli(), "rig", "up", "--bucket", args.bucket], env=env)
        if r.returncode != 0:
            raise DemoError("hdh-migrate rig up failed (see above)")

        if not seed_available(env):
            raise DemoError(
                "'hdh-migrate seed' is not available yet (hdh_migrate/seed.py and cli_data.py): "
                "the demo needs it to write the synthetic SNDS tables into Azurite"
            )
        step(
            f"seed: the four SNDS tables of {SCHEMA.name} ({args.size}) into azure://{args.container}/"
            f"{args.source_prefix}"
        )
        seeded = seed(
            args.container,
            args.source_prefix,
            SIZES[args.size],
            Path(args.home).parent / "demo",
            env,
            force=args.reseed,
        )
        source_bytes = sum(seeded["objects"].values())

        if not dag_file.exists():
            raise DemoError(f"{dag_file} does not exist: the DAG is not written yet")
        step(f"airflow: starting a local Airflow in {args.home}")
        port = args.port or (8080 if not airflow_local.port_open(8080) else None)
        # the run's evidence and the migration state live next to the demo's Airflow, not in $HOME
        state_dir = Path(args.home).resolve().parent / "hdh-migrate"
        state_dir.mkdir(parents=True, exist_ok=True)
        key_file = state_dir / "report-signing.key"  # the demo's HMAC key for auditor reports (0600)
        if not key_file.exists():
            import secrets

            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_urlsafe(32))
        af = airflow_local.start(
            args.home,
            port,
            replace=True,
            say=say,
            dags_folder=dags,
            extra_env={
                "HDH_MIGRATE_WORK_DIR": str(state_dir / "runs"),
                "HDH_MIGRATE_DB_URL": f"sqlite:///{state_dir / 'state.db'}",
                "HDH_MIGRATE_HOME": str(state_dir),
                "HDH_MIGRATE_REPORT_KEY": key_file.read_text().strip(),
            },
        )
        seconds = af.wait_healthy()
        say(f"    ready in {seconds:.1f} s at {af.url}")
        af.wait_dag(DAG_ID)
        dag_params = af.dag_details(DAG_ID).get("params") or {}
        af.set_connections_from_rig()
        say("    connections hdh_azure_source (wasb -> Azurite) and hdh_s3_dest (aws -> SeaweedFS) created")
        for pool, (slots, description) in POOLS.items():
            if af.ensure_pool(pool, slots, description):
                say(f"    pool {pool} created ({slots} slots)")

        conf = {
            # one dataset per demo run: a dataset that was cut over takes new copies only after a rollback
            "dataset": f"snds-demo-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}",
            "source_conn_id": "hdh_azure_source",
            "source_container": args.container,
            "source_prefix": args.source_prefix,
            "dest_conn_id": "hdh_s3_dest",
            "dest_bucket": args.bucket,
            "dest_prefix": args.dest_prefix,
            "part_size_mib": args.part_size_mib,
            "max_parallel": args.max_parallel,
            "verify": args.verify,
            "dry_run": bool(args.dry_run),
        }
        if "validate_processes" in dag_params:
            conf["validate_processes"] = args.validate_processes
        if "shard_max_objects" in dag_params:
            conf["shard_max_objects"] = args.shard_max_objects
        step(f"trigger: {DAG_ID} through the REST API with conf {json.dumps(conf)}")
        run_id = af.trigger(DAG_ID, conf, note="started by scripts/demo")
        t_run = time.monotonic()
        state = af.wait_run(DAG_ID, run_id, timeout=args.timeout)
        run_seconds = time.monotonic() - t_run
        result = af.xcom(DAG_ID, run_id, "summary")
        results_dir = _results_path(result)

        tis = af.task_instances(DAG_ID, run_id)
        failed = [ti for ti in tis if ti.get("state") == "failed"]
        upstream_failed = sorted({ti["task_id"] for ti in tis if ti.get("state") == "upstream_failed"})
        run_url = af.run_url(DAG_ID, run_id)
        say()
        say("=" * 100)
        say(
            f" run {run_id} of {DAG_ID}: {state.upper()} in {run_seconds:.0f} s "
            f"({human_bytes(source_bytes)} of source data)"
        )
        say(f" Airflow UI:  {af.url}   (this run: {run_url})")
        say(f" login:       {af.username} / {af.password}   (from {af.home / airflow_local.PASSWORDS_FILE})")
        if results_dir:
            say(f" results:     {results_dir}")
        if result is not None and not isinstance(result, str):
            say(f" summary:     {json.dumps(result, default=str)[:2000]}")
        if result is None:
            say(" results:     the summary task returned nothing (see its log in the UI)")
        for ti in failed:
            index = int(ti.get("map_index", -1))
            name = ti["task_id"] + (f"[{index}]" if index >= 0 else "")
            say(f" FAILED:      {name} -> {af.task_log_url(DAG_ID, run_id, ti['task_id'], index)}")
        if upstream_failed:
            say(f" not run:     {', '.join(upstream_failed)} (upstream failed)")
        if failed:
            say(" what to do:  the alert line (HDH-MIGRATE ALERT ...) is in each failed task's log; docs/RUNBOOK.md")
        say(f" source:      azure://{args.container}/{args.source_prefix}  (Azurite, 127.0.0.1:{rig.AZURE_PORT})")
        say(f" destination: s3://{args.bucket}/{args.dest_prefix}  (SeaweedFS, 127.0.0.1:{rig.S3_PORT})")
        say(
            f' check again: eval "$(.venv/bin/hdh-migrate rig env)" && .venv/bin/hdh-migrate verify '
            f"azure://{args.container}/{args.source_prefix} s3://{args.bucket}/{args.dest_prefix} --depth full"
        )
        code = 0 if state == "success" else 1
        if state == "success" and not args.dry_run:
            # the switch itself: freeze check, every check green, catalog + routing document, signed report
            step(f"cutover: hdh_cutover for dataset {conf['dataset']} (auditor's report)")
            cut_id = af.trigger("hdh_cutover", {"dataset": conf["dataset"]}, note="started by scripts/demo")
            cut_state = af.wait_run("hdh_cutover", cut_id, timeout=args.timeout)
            rep = af.xcom("hdh_cutover", cut_id, "report") or {}
            say(f" cutover:     {cut_state.upper()} ({af.run_url('hdh_cutover', cut_id)})")
            if rep:
                say(f" audit report (HTML, open in a browser): {rep.get('html')}")
                say(f" audit report (JSON, signed):            {rep.get('local')}")
                if rep.get("url"):
                    say(f" audit report at the destination:       {rep['url']}")
                say(
                    f" check its signature: HDH_MIGRATE_REPORT_KEY=$(cat {key_file}) "
                    f".venv/bin/hdh-migrate report verify {rep.get('local')}"
                )
            code = 0 if cut_state == "success" else 1
        say(f" total demo time {time.monotonic() - t_start:.0f} s")
        say("=" * 100)

        if args.detach:
            keep_running = True
            say(
                f"Airflow keeps running at {af.url}; stop it with: "
                f"{sys.executable} -m hdh_migrate.dev.airflow_local stop {af.home}"
            )
        elif not args.no_wait:
            say(f"Airflow keeps running at {af.url} so you can browse the run; press Ctrl-C to stop it.")
            while True:
                time.sleep(3600)
        return code
    except KeyboardInterrupt:
        say("\ndemo: interrupted")
        return code
    except (DemoError, airflow_local.AirflowLocalError, HdhMigrateError) as exc:
        say(f"demo: error: {exc}")
        return 2
    finally:
        if af is not None and not keep_running:
            af.stop()
        say(
            "The rig (Azurite, SeaweedFS) is left running for the next run; stop it with: "
            ".venv/bin/hdh-migrate rig down"
        )


if __name__ == "__main__":
    sys.exit(main())
