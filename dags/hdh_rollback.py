"""
### hdh_rollback: point a cut-over dataset back at Azure

**Who triggers it:** a person, with the dataset's name and a reason (both go to the audit ledger).

**What it does:** the catalog (state database) and the routing document
`s3://BUCKET/_hdh/routing/<dataset>.json` say Azure is authoritative again; the change is recorded in the
dataset's history and an Asset event tells consumers. **Nothing is deleted** on either side, so a new
cutover (after the checks are green again) is possible at any time.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, AssetAlias, Param, dag, get_current_context, task
from hdh_airflow.alerts import on_failure

#: the same alias as hdh_cutover: consumers follow one stream of catalog changes per dataset
CUTOVER = AssetAlias("hdh-migrate-cutover")

PARAMS = {
    "dataset": Param(
        type="string",
        minLength=1,
        maxLength=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        title="Dataset",
        description="The cut-over dataset to point back at Azure.",
    ),
    "reason": Param(
        type="string",
        minLength=3,
        maxLength=1000,
        title="Reason",
        description="Why the rollback (recorded in the audit ledger and the dataset's history).",
    ),
    "dest_conn_id": Param(
        "hdh_s3_dest",
        type="string",
        minLength=1,
        title="Destination connection (S3)",
        description="Airflow Connection id of type aws (to rewrite the routing document).",
    ),
}


@dag(
    dag_id="hdh_rollback",
    dag_display_name="HDH rollback: one dataset back to Azure",
    description="Catalog and routing document back to Azure, recorded in the history; nothing deleted",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    default_args={
        "owner": "hdh-data-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": on_failure,
    },
    doc_md=__doc__,
    tags=["hdh-migrate", "cutover"],
)
def hdh_rollback() -> None:
    @task(
        task_display_name="Roll back",
        outlets=[CUTOVER],
        doc_md="Points the catalog and the routing document back at Azure; deletes nothing.",
    )
    def rollback() -> dict:
        from hdh_airflow import cutover_tasks as body
        from hdh_airflow.context import actor_of

        ctx = get_current_context()
        params = ctx["params"]
        result = body.rollback(params, ctx["run_id"], actor_of(ctx))
        ctx["outlet_events"][CUTOVER].add(
            Asset(name=f"hdh-migrate/{params['dataset']}/catalog", uri=result["routing"]),
            extra={
                "dataset": params["dataset"],
                "authoritative": "azure",
                "url": result["url"],
                "since": result["since"],
                "run_id": ctx["run_id"],
                "reason": params["reason"],
            },
        )
        return result

    rollback()


hdh_rollback()
