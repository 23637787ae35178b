"""
### hdh_delta_sync: keep the sovereign copy in step with Azure while both run side by side

**When it runs:** every hour once unpaused (it is created paused: unpause it when the dual run starts), and
on demand from *Trigger DAG* for one dataset.

**What it does, per dataset** (the Param `dataset`, or every dataset copied and not yet cut over):
1. lists the source again and compares it with the previous inventory (etag, size, last-modified);
2. copies only the **new and changed** blobs (each copy re-checks the destination's recorded source
   version and SHA-256, so a blob whose only change is its date is not re-sent);
3. **blobs deleted at the source** are reported (the list is in the run's folder and the task log); with
   `deletions = mirror` they are also deleted at the destination, and the deletion is recorded in the
   audit ledger. Never mirrored by default;
4. verifies what it copied and records a verification check for the new source state (the cutover needs it).

A dataset that is cut over is not synced: roll it back first (`hdh_rollback`).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task
from hdh_airflow.alerts import on_failure

# Task bodies are imported inside the tasks: the dag-processor parses this file offline, without SDKs.

PARAMS = {
    "dataset": Param(
        "",
        type="string",
        maxLength=100,
        pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]*)?$",
        title="Dataset",
        description="One dataset to sync; empty (the scheduled runs) syncs every dataset that was copied and is "
        "not cut over. Its locations come from the state database (registered by hdh_migrate_dataset).",
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
    "deletions": Param(
        "report",
        type="string",
        enum=["report", "mirror"],
        title="Blobs deleted at the source",
        description="report (default): list them, leave the destination untouched (the cutover stays blocked "
        "until they are handled); mirror: delete them at the destination too, recorded in the audit ledger.",
    ),
    "verify": Param(
        "full",
        type="string",
        enum=["quick", "full", "both"],
        title="Verification depth",
        description="How the synced objects are verified: quick (recorded hashes), full (re-read the "
        "destination), both (re-read both sides).",
    ),
    "max_parallel": Param(
        8,
        type="integer",
        minimum=1,
        maximum=64,
        title="Parallel transfers",
        description="Concurrent transfers inside the sync task.",
    ),
    "part_size_mib": Param(
        8,
        type="integer",
        minimum=5,
        maximum=5120,
        title="Part size (MiB)",
        description="Multipart part size for large blobs.",
    ),
}


def _actor(ctx: dict) -> str:
    from hdh_airflow.context import actor_of

    return actor_of(ctx)


@dag(
    dag_id="hdh_delta_sync",
    dag_display_name="HDH dual run: delta sync Azure -> S3",
    description="Copy only new and changed blobs while Azure and the sovereign store run side by side",
    schedule="@hourly",
    start_date=None,
    catchup=False,
    is_paused_upon_creation=True,
    max_active_runs=1,
    params=PARAMS,
    default_args={
        "owner": "hdh-data-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure,
    },
    doc_md=__doc__,
    tags=["hdh-migrate", "dual-run"],
)
def hdh_delta_sync() -> None:
    @task(
        task_display_name="Datasets in dual run",
        doc_md="The dataset of the Params, or every dataset copied and not cut over.",
    )
    def datasets() -> list[str]:
        from hdh_airflow import cutover_tasks as body

        return body.datasets_in_dual_run(get_current_context()["params"])

    @task(
        task_display_name="Delta sync",
        map_index_template="{{ dataset_name }}",
        pool="hdh_dest_store",
        doc_md="Lists the source again, copies new and changed blobs, reports (or mirrors) deletions, verifies "
        "what it copied and records the verification for the new source state.",
    )
    def sync(dataset: str) -> dict:
        from hdh_airflow import cutover_tasks as body

        ctx = get_current_context()
        ctx["dataset_name"] = dataset
        return body.sync(ctx["params"], dataset, ctx["run_id"], _actor(ctx))

    sync.expand(dataset=datasets())


hdh_delta_sync()
