"""
### hdh_migrate_dataset: move one dataset from Azure Blob Storage to the sovereign S3 store

**Who triggers it:** a data engineer, from *Trigger DAG* (the form below lists every Param) or the REST API
(`POST /api/v2/dags/hdh_migrate_dataset/dagRuns` with the same Params in `conf`).

**What it does**
1. **Inventory**: lists every blob under `source_container/source_prefix` into a Parquet manifest.
2. **Plan**: cuts the manifest into shards balanced by bytes and object count (at most 1,000 shards).
3. **Copy shard N**: ranged reads from Azure feed S3 multipart uploads, every byte hashed (SHA-256); objects
   already copied and unchanged are skipped, so clearing a shard is always safe.
4. **Verify shard N**: reads the destination back independently (`verify=full` re-reads every byte).
5. **Validate table T**: for each table (a folder under the prefix with a suite in `expectations/`), runs the
   Great Expectations suite on both sides and compares row counts, nulls, min/max/sums, distinct keys and an
   order-independent fingerprint of the rows.
6. **Summary**: checks for extra objects at the destination, writes `summary.json`, and publishes the
   dataset's migrated location as an Asset event.

**When a task fails** an alert `HDH-MIGRATE ALERT dataset=... task=... shard=... error=...` is logged (and
sent to the webhook if configured); see `docs/RUNBOOK.md`. Permanent errors (credentials, missing
container/bucket, checksum mismatch) fail at once; transient ones (throttling, store unreachable, source
changed) are retried with exponential backoff.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, AssetAlias, Param, dag, get_current_context, task
from hdh_airflow.alerts import on_failure

# The task bodies (boto3, azure, pyarrow) are imported inside the tasks, never at parse time: the
# dag-processor re-parses this file all day and must stay fast and offline.

MIGRATED = AssetAlias("hdh-migrate-migrated")
CONTAINER_PATTERN = r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$"
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"

PARAMS = {
    "dataset": Param(
        "snds-demo",
        type="string",
        minLength=1,
        maxLength=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        title="Dataset",
        description="Name of the dataset being migrated (letters, digits, '.', '_' and '-'); it names the run's "
        "folder, the Asset and the audit records.",
    ),
    "source_conn_id": Param(
        "hdh_azure_source",
        type="string",
        minLength=1,
        title="Source connection (Azure)",
        description="Airflow Connection id of type wasb holding the Azure storage account credentials.",
    ),
    "source_container": Param(
        "snds",
        type="string",
        pattern=CONTAINER_PATTERN,
        title="Source container",
        description="Azure Blob container holding the dataset (3-63 lowercase letters, digits, hyphens).",
    ),
    "source_prefix": Param(
        None,
        type=["null", "string"],
        title="Source prefix",
        description="Folder inside the container; every blob under it is copied. Empty means the whole container.",
    ),
    "dest_conn_id": Param(
        "hdh_s3_dest",
        type="string",
        minLength=1,
        title="Destination connection (S3)",
        description="Airflow Connection id of type aws for the sovereign S3 store, with endpoint_url in its extra.",
    ),
    "dest_bucket": Param(
        "hdh-sovereign",
        type="string",
        pattern=BUCKET_PATTERN,
        title="Destination bucket",
        description="S3 bucket that receives the dataset; it must already exist (provisioned by the store).",
    ),
    "dest_prefix": Param(
        None,
        type=["null", "string"],
        title="Destination prefix",
        description="Folder in the bucket; the blob PREFIX/a/b.parquet lands at DEST_PREFIX/a/b.parquet.",
    ),
    "part_size_mib": Param(
        8,
        type="integer",
        minimum=5,
        maximum=5120,
        title="Part size (MiB)",
        description="Multipart part size in MiB (5 to 5120); grown automatically past 10,000 parts.",
    ),
    "max_parallel": Param(
        8,
        type="integer",
        minimum=1,
        maximum=64,
        title="Parallel transfers per shard",
        description="Concurrent ranged reads / part uploads inside each copy task (threads); Airflow pools cap "
        "how many shards run at once.",
    ),
    "verify": Param(
        "full",
        type="string",
        enum=["quick", "full", "both"],
        title="Verification depth",
        description="quick: sizes, versions and recorded hashes; full: re-read and hash every destination byte; "
        "both: re-read the source as well.",
    ),
    "validate_tables": Param(
        [],
        type="array",
        items={"type": "string"},
        title="Tables to validate (Great Expectations)",
        description="Table folders under the source prefix to validate on both sides with expectations/NAME.json; "
        "empty = every folder that has a suite.",
    ),
    "validate_processes": Param(
        1,
        type="integer",
        minimum=1,
        maximum=32,
        title="Processes per table validation",
        description="A table's files are split between this many processes on each side (at least 32 MiB of "
        "files each), both sides at once. "
        "Each costs GX's import (~6 s) and a batch in memory (~1-2 GB for 250,000 rows of a wide table): raise it "
        "on workers with spare cores for tables of millions of rows.",
    ),
    "validation_required": Param(
        True,
        type="boolean",
        title="Validation required for cutover",
        description="Tabular datasets must pass Great Expectations validation before cutover; untick only for "
        "non-tabular datasets (recorded in the audit ledger).",
    ),
    "shard_max_objects": Param(
        0,
        type="integer",
        minimum=0,
        maximum=1_000_000,
        title="Objects per shard (0 = automatic)",
        description="Cap on objects per shard; 0 lets the planner balance bytes and counts under 1,000 shards. "
        "Smaller shards retry at a finer grain.",
    ),
    "dry_run": Param(
        False,
        type="boolean",
        title="Dry run",
        description="List and compare only: report what would be copied, write nothing to the destination.",
    ),
}

DEFAULT_ARGS = {
    "owner": "hdh-data-platform",
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "on_failure_callback": on_failure,
}


def _run(ctx: dict) -> tuple[dict, str, str]:
    """The run's Params, id and actor: what every task body takes first."""
    from hdh_airflow.context import actor_of

    return ctx["params"], ctx["run_id"], actor_of(ctx)


# -- the tasks: each one call of hdh_airflow.tasks (the same steps `hdh-migrate migrate` runs) --------------
@task(
    task_display_name="Inventory the source",
    pool="hdh_source_store",
    doc_md="Checks both Connections, the container and the bucket, then lists the source into "
    "`inventory.parquet` (name, size, etag, Content-MD5, last-modified, content-type, metadata).",
)
def inventory() -> dict:
    from hdh_airflow import tasks as body

    return body.inventory(*_run(get_current_context()))


@task(
    task_display_name="Plan shards",
    doc_md="Cuts the inventory into shards balanced by bytes and object count (at most 1,000).",
)
def plan(inv: dict) -> list[dict]:
    from hdh_airflow import tasks as body

    return body.plan(*_run(get_current_context()), inv)


@task(
    task_display_name="Copy shard",
    map_index_template="{{ shard_label }}",
    pool="hdh_dest_store",
    doc_md="Copies one shard: ranged reads into multipart uploads, every byte hashed. Objects already "
    "copied and unchanged are skipped, so clearing this task is always safe.",
)
def copy_shard(shard: dict) -> dict:
    from hdh_airflow import tasks as body

    ctx = get_current_context()
    ctx["shard_label"] = shard["label"]
    return body.copy_shard(*_run(ctx), shard, ctx["ti"].try_number)


@task(
    task_display_name="Verify shard",
    map_index_template="{{ shard_label }}",
    pool="hdh_dest_store",
    doc_md="Reads the shard's objects back from the destination, independently of the copy, and checks "
    "size, source version and SHA-256 (depth from the `verify` Param).",
)
def verify_shard(shard: dict) -> dict:
    from hdh_airflow import tasks as body

    ctx = get_current_context()
    ctx["shard_label"] = f"shard {shard['index']}: verify {shard['objects']:,} objects"
    return body.verify_shard(*_run(ctx), shard)


@task(
    task_display_name="Find tables to validate",
    doc_md="Lists the table folders under the source prefix that have a Great Expectations suite.",
)
def tables_to_validate(inv: dict) -> list[dict]:
    from hdh_airflow import tasks as body

    return body.tables_to_validate(*_run(get_current_context()), inv)


@task(
    task_display_name="Validate table",
    map_index_template="{{ table_label }}",
    pool="hdh_dest_store",
    retries=1,
    doc_md="Runs the table's suite on the Azure copy and on the S3 copy, then compares the metrics of both "
    "sides; a difference or a failed expectation blocks the cutover and is reported column by column.",
)
def validate_table(item: dict) -> dict:
    from hdh_airflow import tasks as body

    ctx = get_current_context()
    ctx["table_label"] = f"table {item['table']}"
    return body.validate(*_run(ctx), item)


@task(
    task_display_name="Summary",
    trigger_rule="none_failed",
    outlets=[MIGRATED],
    doc_md="Looks for extra objects at the destination, writes summary.json and publishes the migrated "
    "location as an Asset event.",
)
def summary(copies: list[dict], verifies: list[dict], validations: list[dict]) -> dict:
    from hdh_airflow import tasks as body

    ctx = get_current_context()
    result = body.summary(
        *_run(ctx), list(copies or []), [v for v in (verifies or []) if v], [v for v in (validations or []) if v]
    )
    if result["ok"] and not ctx["params"]["dry_run"]:
        _publish(ctx, result)
    return result


def _publish(ctx: dict, result: dict) -> None:
    """The dataset's migrated location, as an Asset event consumers can schedule on."""
    params = ctx["params"]
    prefix = (params["dest_prefix"] or "").strip("/")
    ctx["outlet_events"][MIGRATED].add(
        Asset(
            name=f"hdh-migrate/{params['dataset']}",
            uri=f"s3://{params['dest_bucket']}/{prefix}" if prefix else f"s3://{params['dest_bucket']}",
        ),
        extra={
            "dataset": params["dataset"],
            "objects": result["objects"],
            "bytes": result["bytes"],
            "summary": result["summary"],
        },
    )


@dag(
    dag_id="hdh_migrate_dataset",
    dag_display_name="HDH migrate: one dataset, Azure -> S3",
    description="Copy one dataset from Azure Blob Storage to the sovereign S3 store, verified end to end",
    schedule=None,
    catchup=False,
    params=PARAMS,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["hdh-migrate", "migration"],
    max_active_runs=4,
)
def hdh_migrate_dataset() -> None:
    inv = inventory()
    copies = copy_shard.expand(shard=plan(inv))
    verifies = verify_shard.expand(shard=copies)
    tables = tables_to_validate(inv)
    verifies >> tables
    validations = validate_table.expand(item=tables)
    summary(copies, verifies, validations)


hdh_migrate_dataset()
