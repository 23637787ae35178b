"""
### hdh_cutover: switch one dataset from Azure to the sovereign store, if and only if it is proven safe

**Who triggers it:** a person (their name is recorded as the actor), from *Trigger DAG* with the dataset's
name, or the REST API.

**What it does**
1. **Freeze check**: first finishes what an earlier cutover or rollback of this dataset left half-done
   (routing document back in line with the catalog, a missing signed report written; `docs/AUDIT.md` 4),
   then lists the source again. If anything changed since the last verification, it first runs a
   **delta sync** (copy the changes, verify them), then lists again.
2. **Preflight**: the latest verification and (for tabular datasets) the latest Great Expectations
   validation must exist, have passed, and have been taken on the current source state. Otherwise the
   cutover is **refused**: the task fails with every reason, the refusal is recorded in the audit ledger,
   and a signed refusal report is written.
3. **Switch**: the catalog (state database) and the routing document `s3://BUCKET/_hdh/routing/<dataset>.json`
   now say the sovereign store is authoritative; an Asset event is emitted for consumers.
4. **Report**: the signed audit report (HTML + JSON + per-object evidence) goes to
   `s3://BUCKET/_hdh-audit/<dataset>/<time>/` (Object Lock where supported) and the run's folder.

To undo: `hdh_rollback` (nothing is deleted either way).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, AssetAlias, Param, dag, get_current_context, task
from hdh_airflow.alerts import on_failure

CUTOVER = AssetAlias("hdh-migrate-cutover")

PARAMS = {
    "dataset": Param(
        type="string",
        minLength=1,
        maxLength=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        title="Dataset",
        description="The dataset to cut over, as registered by hdh_migrate_dataset (see `hdh-migrate status`).",
    ),
    "source_conn_id": Param(
        "hdh_azure_source",
        type="string",
        minLength=1,
        title="Source connection (Azure)",
        description="Airflow Connection id of type wasb for the Azure storage account.",
    ),
    "dest_conn_id": Param(
        "hdh_s3_dest",
        type="string",
        minLength=1,
        title="Destination connection (S3)",
        description="Airflow Connection id of type aws for the sovereign S3 store.",
    ),
    "report_key_conn_id": Param(
        "hdh_report_key",
        type="string",
        minLength=1,
        title="Report signing key connection",
        description="Kept for compatibility: the deployment chooses the signing key (HDH_MIGRATE_REPORT_KEY_CONN, "
        "default hdh_report_key, an Ed25519 private key in PEM); a run asking for another Connection is refused.",
    ),
    "sync": Param(
        True,
        type="boolean",
        title="Sync if the source changed",
        description="If the source changed since the last verification: sync and re-verify first (on), or "
        "refuse the cutover (off).",
    ),
    "deletions": Param(
        "report",
        type="string",
        enum=["report", "mirror"],
        title="Blobs deleted at the source",
        description="For that sync: report them (the cutover is then refused until handled) or "
        "mirror the deletion at the destination (recorded in the ledger).",
    ),
    "verify": Param(
        "full",
        type="string",
        enum=["quick", "full", "both"],
        title="Verification depth",
        description="Depth of the verification of what the sync copies.",
    ),
    "max_parallel": Param(
        8,
        type="integer",
        minimum=1,
        maximum=64,
        title="Parallel transfers",
        description="Concurrent transfers in the sync.",
    ),
    "part_size_mib": Param(
        8,
        type="integer",
        minimum=5,
        maximum=5120,
        title="Part size (MiB)",
        description="Multipart part size in the sync.",
    ),
}


def _run(ctx: dict) -> tuple[dict, str, str]:
    """The run's Params, id and actor: what every task body takes first."""
    from hdh_airflow.context import actor_of

    return ctx["params"], ctx["run_id"], actor_of(ctx)


def _started(ctx: dict) -> datetime:
    run = ctx.get("dag_run")
    return (getattr(run, "start_date", None) or datetime.now(UTC)).astimezone(UTC)


# -- the tasks: each one call of hdh_airflow.cutover_tasks (the steps `hdh-migrate cutover` runs) ------------
@task(
    task_display_name="Freeze check",
    doc_md="Finishes what an earlier cutover or rollback left half-done (the recovery pass), then lists the "
    "source again and compares its fingerprint with the state the last verification saw.",
)
def freeze_check() -> dict:
    from hdh_airflow import cutover_tasks as body

    return body.freeze(*_run(get_current_context()))


@task.branch(
    task_display_name="Source changed?",
    doc_md="Sync first if the source changed since verification (and the Params allow it).",
)
def changed(fz: dict) -> str:
    return "delta_sync" if fz["sync_needed"] else "preflight"


@task(
    task_display_name="Delta sync and re-verify",
    pool="hdh_dest_store",
    doc_md="Copies what changed at the source, verifies it, records the new verification.",
)
def delta_sync() -> dict:
    from hdh_airflow import cutover_tasks as body

    params, run_id, actor = _run(get_current_context())
    return body.sync(params, params["dataset"], run_id, actor)


@task(
    task_display_name="Preflight (all checks green?)",
    trigger_rule="none_failed_min_one_success",
    retries=0,
    doc_md="Refuses the cutover, with every reason, if a check failed, is stale or is missing; the refusal "
    "is recorded in the ledger with a signed report.",
)
def preflight(fz: dict) -> dict:
    from hdh_airflow import cutover_tasks as body

    ctx = get_current_context()
    synced = bool(ctx["ti"].xcom_pull(task_ids="delta_sync"))
    return body.clearance(*_run(ctx), fz, synced, _started(ctx))


@task(
    task_display_name="Switch",
    outlets=[CUTOVER],
    retries=0,
    doc_md="Catalog and routing document point at the sovereign store (atomically); emits the Asset event.",
)
def switch(pf: dict) -> dict:
    from hdh_airflow import cutover_tasks as body

    ctx = get_current_context()
    params = ctx["params"]
    sw = body.switch(*_run(ctx), pf)
    ctx["outlet_events"][CUTOVER].add(
        Asset(name=f"hdh-migrate/{params['dataset']}/catalog", uri=sw["routing"]),
        extra={
            "dataset": params["dataset"],
            "authoritative": "s3",
            "url": sw["url"],
            "since": sw["since"],
            "run_id": ctx["run_id"],
            "report": sw["report"],
        },
    )
    return sw


@task(
    task_display_name="Audit report",
    doc_md="Signed HTML + JSON report with per-object evidence, uploaded under _hdh-audit/ (Object Lock).",
)
def report(sw: dict) -> dict:
    from hdh_airflow import cutover_tasks as body

    ctx = get_current_context()
    return body.report(*_run(ctx), sw, _started(ctx))


@dag(
    dag_id="hdh_cutover",
    dag_display_name="HDH cutover: one dataset to the sovereign store",
    description="Freeze check, all checks green, switch the catalog and routing document, signed audit report",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    default_args={
        "owner": "hdh-data-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure,
    },
    doc_md=__doc__,
    tags=["hdh-migrate", "cutover"],
)
def hdh_cutover() -> None:
    fz = freeze_check()
    sync = delta_sync()
    pf = preflight(fz)
    changed(fz) >> [sync, pf]
    sync >> pf
    report(switch(pf))


hdh_cutover()
