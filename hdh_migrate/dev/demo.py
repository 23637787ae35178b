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
from dataclasses import dataclass
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
RULE = "=" * 100  # above and below the report


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
    plan = _seed_plan(container, prefix, scale)
    stamp = state_dir / "seed.json"
    previous = _read_stamp(stamp)
    if not force and previous and _same_seed_there(previous, plan):
        total = sum(previous["objects"].values())
        say(
            f"    already seeded: {len(previous['objects'])} files, {human_bytes(total)} "
            f"under azure://{container}/{prefix} (--reseed to write them again)"
        )
        return previous
    _listing(container, prefix)  # creates the container
    for table, n in plan["rows"].items():
        _seed_one_table(table, n, plan, env)
    objects = _listing(container, prefix)
    state_dir.mkdir(parents=True, exist_ok=True)
    result = {"plan": plan, "objects": objects}
    stamp.write_text(json.dumps(result, indent=1))
    say(f"    seeded {len(objects)} files, {human_bytes(sum(objects.values()))} under azure://{container}/{prefix}")
    return result


def _seed_plan(container: str, prefix: str, scale: float) -> dict[str, Any]:
    """Everything the seeded data depends on: the same plan and the same files mean the same data."""
    rows = {t: max(1000, int(n * scale)) for t, n in TABLE_ROWS.items()}
    return {
        "container": container,
        "prefix": prefix,
        "rows": rows,
        "universe": rows["IR_BEN_R"],
        "seed": SEED,
        "rows_per_file": ROWS_PER_FILE,
    }


def _read_stamp(stamp: Path) -> Any:
    """What the last seeding recorded (its plan and the files it left), None if it recorded nothing."""
    try:
        return json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None


def _same_seed_there(previous: dict[str, Any], plan: dict[str, Any]) -> bool:
    """The last seeding had this plan and its files are still there, unchanged in size."""
    return previous.get("plan") == plan and previous.get("objects") == _listing(plan["container"], plan["prefix"])


def _seed_one_table(table: str, rows: int, plan: dict[str, Any], env: dict[str, str]) -> None:
    """``hdh-migrate seed`` for one table (the CLI a user would run), with a line of what it wrote."""
    t0 = time.monotonic()
    argv = [
        _cli(),
        "seed",
        "--schema",
        str(SCHEMA),
        "--table",
        table,
        "--rows",
        str(rows),
        "--universe",
        str(plan["universe"]),
        "--seed",
        str(SEED),
        "--rows-per-file",
        str(ROWS_PER_FILE),
        "--json",
        f"azure://{plan['container']}/{plan['prefix']}",
    ]
    r = _run(argv, env=env, capture=True)
    if r.returncode != 0:
        raise DemoError(f"hdh-migrate seed failed for {table} (exit {r.returncode}); command: {' '.join(argv)}")
    say(f"    {table:9} {rows:>10,} rows  {_written(r.stdout):>10}  in {time.monotonic() - t0:5.1f} s")


def _written(seed_json: str) -> str:
    """The bytes ``hdh-migrate seed --json`` reports it wrote, human-readable ("?" if unreadable)."""
    try:
        return human_bytes(sum(int(x.get("bytes", 0)) for x in json.loads(seed_json)))
    except (ValueError, TypeError, AttributeError):
        return "?"


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
    """SIGTERM ends the demo as Ctrl-C does, so that the Airflow it started is stopped on the way out."""
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    root = airflow_local.project_root()
    p = argparse.ArgumentParser(
        prog="scripts/demo",
        description="A synthetic SNDS dataset moved from Azurite to SeaweedFS by the Airflow DAG "
        "hdh_migrate_dataset, all on 127.0.0.1; prints the UI address, login and results.",
    )
    _add_data_options(p)
    _add_dag_options(p)
    _add_airflow_options(p, root)
    _add_wait_options(p)
    args = p.parse_args(argv)
    # one prefix per size: a smaller dataset seeded over a bigger one would leave its extra files behind
    args.source_prefix = args.source_prefix or f"snds/{args.size}/"
    args.dest_prefix = args.dest_prefix or f"snds/{args.size}/"
    return args


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """Which data, where: the source dataset and the destination."""
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


def _add_dag_options(p: argparse.ArgumentParser) -> None:
    """The Params the DAG run is triggered with."""
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


def _add_airflow_options(p: argparse.ArgumentParser, root: Path) -> None:
    """The local Airflow: where it lives, its port, its DAGs, how long to wait for the run."""
    p.add_argument("--home", default=str(root / "var" / "airflow"), help="AIRFLOW_HOME (default var/airflow)")
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("HDH_DEMO_PORT", "0")) or None,
        help="API/UI port (default 8080 when free, else any free port)",
    )
    p.add_argument("--dags-folder", default=str(root / "dags"), help="DAGs folder (default dags/)")
    p.add_argument("--timeout", type=float, default=3600, help="give up on the run after this many seconds")


def _add_wait_options(p: argparse.ArgumentParser) -> None:
    """What happens to Airflow after the report: kept for the UI (default), stopped, or left running."""
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


@dataclass
class _Outcome:
    """What main() needs when the demo ends, however it ends."""

    af: airflow_local.LocalAirflow | None = None  # the Airflow to stop
    keep_running: bool = False  # --detach: leave it running
    code: int = 130  # the exit code so far: Ctrl-C before the run's end exits 130, after it the run's code


def main(argv: list[str] | None = None) -> int:
    """The demo; exits 0 when the run (and the cutover) succeeded, 1 when one failed, 2 on an error on the
    way, 130 when interrupted before the run ended. The rig is always left running."""
    args = parse_args(argv)
    t_start = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false", **rig.env())
    outcome = _Outcome()
    try:
        _demo(args, env, outcome, t_start)
        return outcome.code
    except KeyboardInterrupt:
        say("\ndemo: interrupted")
        return outcome.code
    except (DemoError, airflow_local.AirflowLocalError, HdhMigrateError) as exc:
        say(f"demo: error: {exc}")
        return 2
    finally:
        if outcome.af is not None and not outcome.keep_running:
            outcome.af.stop()
        say(
            "The rig (Azurite, SeaweedFS) is left running for the next run; stop it with: "
            ".venv/bin/hdh-migrate rig down"
        )


def _demo(args: argparse.Namespace, env: dict[str, str], outcome: _Outcome, t_start: float) -> None:
    """Rig, seed, Airflow, the migration run and its report, the cutover; ``outcome`` follows along."""
    _start_rig(args, env)
    source_bytes = _seed_source(args, env)
    dag_file = Path(args.dags_folder).resolve() / f"{DAG_ID}.py"
    if not dag_file.exists():
        raise DemoError(f"{dag_file} does not exist: the DAG is not written yet")
    step(f"airflow: starting a local Airflow in {args.home}")
    port = args.port or (8080 if not airflow_local.port_open(8080) else None)
    # the run's evidence and the migration state live next to the demo's Airflow, not in $HOME
    state_dir = Path(args.home).resolve().parent / "hdh-migrate"
    state_dir.mkdir(parents=True, exist_ok=True)
    key_file = _report_key(state_dir)
    af = outcome.af = _start_airflow(args, port, dag_file.parent, state_dir, key_file)
    conf = _dag_conf(args, _prepare_airflow(af))
    run_id, state, run_seconds = _run_migration(af, conf, args.timeout)
    _report_run(args, af, run_id, state, run_seconds, source_bytes)
    outcome.code = 0 if state == "success" else 1
    if state == "success" and not args.dry_run:
        outcome.code = _cutover(af, conf["dataset"], args.timeout, key_file)
    say(f" total demo time {time.monotonic() - t_start:.0f} s")
    say(RULE)
    _after_report(args, af, outcome)


def _start_rig(args: argparse.Namespace, env: dict[str, str]) -> None:
    """``hdh-migrate rig up`` (adopts servers already running) and the destination bucket."""
    step("rig: Azurite (Azure source) and SeaweedFS (S3 destination) on 127.0.0.1")
    r = _run([_cli(), "rig", "up", "--bucket", args.bucket], env=env)
    if r.returncode != 0:
        raise DemoError("hdh-migrate rig up failed (see above)")


def _seed_source(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Seed the source dataset (unless already there); return its size in bytes."""
    step(
        f"seed: the four SNDS tables of {SCHEMA.name} ({args.size}) into azure://{args.container}/{args.source_prefix}"
    )
    seeded = seed(
        args.container,
        args.source_prefix,
        SIZES[args.size],
        Path(args.home).parent / "demo",
        env,
        force=args.reseed,
    )
    return sum(seeded["objects"].values())


def _report_key(state_dir: Path) -> Path:
    """The demo's Ed25519 key pair for auditor reports (private key 0600), made on the first run (a key of
    the old kind, an HMAC secret, is replaced). Returns the private key's path; the public key is beside it."""
    from hdh_migrate.audit.signing import generate_key_pair

    key_file = state_dir / "report-signing.key"
    if not key_file.exists() or not key_file.read_bytes().startswith(b"-----BEGIN"):
        private, public = generate_key_pair()
        key_file.unlink(missing_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private)
        _public_key(key_file).write_bytes(public)
    return key_file


def _public_key(key_file: Path) -> Path:
    return key_file.with_suffix(".pub.pem")


def _start_airflow(
    args: argparse.Namespace, port: int | None, dags: Path, state_dir: Path, key_file: Path
) -> airflow_local.LocalAirflow:
    """Start the demo's Airflow (replacing one a previous demo left running), its tasks pointed at
    ``state_dir`` for their work files, state database and reports."""
    return airflow_local.start(
        args.home,
        port,
        replace=True,
        say=say,
        dags_folder=dags,
        extra_env={
            "HDH_MIGRATE_WORK_DIR": str(state_dir / "runs"),
            "HDH_MIGRATE_DB_URL": f"sqlite:///{state_dir / 'state.db'}",
            "HDH_MIGRATE_HOME": str(state_dir),
            "HDH_MIGRATE_REPORT_KEY_FILE": str(key_file),
            "HDH_MIGRATE_TRUSTED_KEYS": str(_public_key(key_file)),
        },
    )


def _prepare_airflow(af: airflow_local.LocalAirflow) -> dict[str, Any]:
    """Wait for Airflow and the DAG, create the Connections and the pools; return the DAG's Params."""
    seconds = af.wait_healthy()
    say(f"    ready in {seconds:.1f} s at {af.url}")
    af.wait_dag(DAG_ID)
    dag_params = af.dag_details(DAG_ID).get("params") or {}
    af.set_connections_from_rig()
    say("    connections hdh_azure_source (wasb -> Azurite) and hdh_s3_dest (aws -> SeaweedFS) created")
    for pool, (slots, description) in POOLS.items():
        if af.ensure_pool(pool, slots, description):
            say(f"    pool {pool} created ({slots} slots)")
    return dag_params


def _dag_conf(args: argparse.Namespace, dag_params: dict[str, Any]) -> dict[str, Any]:
    """The run's conf; the optional Params only when the DAG declares them."""
    conf: dict[str, Any] = {
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
    return conf


def _run_migration(af: airflow_local.LocalAirflow, conf: dict[str, Any], timeout: float) -> tuple[str, str, float]:
    """Trigger the DAG and follow the run to its end; return its id, final state and duration."""
    step(f"trigger: {DAG_ID} through the REST API with conf {json.dumps(conf)}")
    run_id = af.trigger(DAG_ID, conf, note="started by scripts/demo")
    t_run = time.monotonic()
    state = af.wait_run(DAG_ID, run_id, timeout=timeout)
    return run_id, state, time.monotonic() - t_run


def _report_run(
    args: argparse.Namespace,
    af: airflow_local.LocalAirflow,
    run_id: str,
    state: str,
    run_seconds: float,
    source_bytes: int,
) -> None:
    """The report's first part: the run, where to see it, its results, what failed, where the data is."""
    result = af.xcom(DAG_ID, run_id, "summary")
    results_dir = _results_path(result)
    tis = af.task_instances(DAG_ID, run_id)
    failed = [ti for ti in tis if ti.get("state") == "failed"]
    upstream_failed = sorted({ti["task_id"] for ti in tis if ti.get("state") == "upstream_failed"})
    run_url = af.run_url(DAG_ID, run_id)
    say()
    say(RULE)
    say(
        f" run {run_id} of {DAG_ID}: {state.upper()} in {run_seconds:.0f} s "
        f"({human_bytes(source_bytes)} of source data)"
    )
    say(f" Airflow UI:  {af.url}   (this run: {run_url})")
    say(f" login:       {af.username} / {af.password}   (from {af.home / airflow_local.PASSWORDS_FILE})")
    _say_results(result, results_dir)
    _say_failures(af, run_id, failed, upstream_failed)
    _say_data(args)


def _say_results(result: Any, results_dir: str | None) -> None:
    """Where the results are, and what the summary task returned."""
    if results_dir:
        say(f" results:     {results_dir}")
    if result is not None and not isinstance(result, str):
        say(f" summary:     {json.dumps(result, default=str)[:2000]}")
    if result is None:
        say(" results:     the summary task returned nothing (see its log in the UI)")


def _say_failures(
    af: airflow_local.LocalAirflow, run_id: str, failed: list[dict[str, Any]], upstream_failed: list[str]
) -> None:
    """Each failed task instance with the UI page of its log, the tasks that did not run, and what to do."""
    for ti in failed:
        index = int(ti.get("map_index", -1))
        name = ti["task_id"] + (f"[{index}]" if index >= 0 else "")
        say(f" FAILED:      {name} -> {af.task_log_url(DAG_ID, run_id, ti['task_id'], index)}")
    if upstream_failed:
        say(f" not run:     {', '.join(upstream_failed)} (upstream failed)")
    if failed:
        say(" what to do:  the alert line (HDH-MIGRATE ALERT ...) is in each failed task's log; docs/RUNBOOK.md")


def _say_data(args: argparse.Namespace) -> None:
    """Where the source and the copy are, and the command that compares them again."""
    say(f" source:      azure://{args.container}/{args.source_prefix}  (Azurite, 127.0.0.1:{rig.AZURE_PORT})")
    say(f" destination: s3://{args.bucket}/{args.dest_prefix}  (SeaweedFS, 127.0.0.1:{rig.S3_PORT})")
    say(
        f' check again: eval "$(.venv/bin/hdh-migrate rig env)" && .venv/bin/hdh-migrate verify '
        f"azure://{args.container}/{args.source_prefix} s3://{args.bucket}/{args.dest_prefix} --depth full"
    )


def _cutover(af: airflow_local.LocalAirflow, dataset: str, timeout: float, key_file: Path) -> int:
    """Run ``hdh_cutover`` for the dataset and print where its signed report is; return the exit code."""
    # the switch itself: freeze check, every check green, catalog + routing document, signed report
    step(f"cutover: hdh_cutover for dataset {dataset} (auditor's report)")
    cut_id = af.trigger("hdh_cutover", {"dataset": dataset}, note="started by scripts/demo")
    cut_state = af.wait_run("hdh_cutover", cut_id, timeout=timeout)
    rep = af.xcom("hdh_cutover", cut_id, "report") or {}
    say(f" cutover:     {cut_state.upper()} ({af.run_url('hdh_cutover', cut_id)})")
    if rep:
        say(f" audit report (HTML, open in a browser): {rep.get('html')}")
        say(f" audit report (JSON, signed):            {rep.get('local')}")
        if rep.get("url"):
            say(f" audit report at the destination:       {rep['url']}")
        say(
            f" check it (no secret needed): .venv/bin/hdh-migrate report verify {rep.get('local')} "
            f"--public-key {_public_key(key_file)}   (or see VERIFY.txt beside it)"
        )
    return 0 if cut_state == "success" else 1


def _after_report(args: argparse.Namespace, af: airflow_local.LocalAirflow, outcome: _Outcome) -> None:
    """--detach leaves Airflow running, --no-wait lets main() stop it now, else it serves the UI until Ctrl-C."""
    if args.detach:
        outcome.keep_running = True
        say(
            f"Airflow keeps running at {af.url}; stop it with: "
            f"{sys.executable} -m hdh_migrate.dev.airflow_local stop {af.home}"
        )
    elif not args.no_wait:
        say(f"Airflow keeps running at {af.url} so you can browse the run; press Ctrl-C to stop it.")
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
