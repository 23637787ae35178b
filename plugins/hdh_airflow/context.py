"""From a task's Airflow context to hdh-migrate's: the run's folder, its actor, its stores and options.

Every task of a DAG run computes the same ``RunContext`` from the dataset and the run id, so the tasks,
running in separate processes (on separate workers with CeleryExecutor), share one run folder: it must be
on storage every worker mounts (``HDH_MIGRATE_WORK_DIR``, docs/DEPLOY.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hdh_airflow.connections import azure_settings_from_connection, s3_settings_from_connection
from hdh_migrate.locations import Location, parse_location
from hdh_migrate.runs.context import RunContext, airflow_actor, dataset_run_dir
from hdh_migrate.runs.pair import StorePair, open_destination, open_pair
from hdh_migrate.sizes import MiB
from hdh_migrate.transfer.copier import CopyOptions


def work_root() -> Path:
    """Where runs keep their manifests and evidence; must be shared by all workers of a deployment."""
    if os.environ.get("HDH_MIGRATE_WORK_DIR"):
        return Path(os.environ["HDH_MIGRATE_WORK_DIR"])
    return Path(os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))) / "hdh-migrate"


def actor_of(ctx: dict[str, Any]) -> str:
    """The person (or API client) who triggered the run; ``airflow:<run type>`` for scheduled runs."""
    run = ctx.get("dag_run")
    return airflow_actor(getattr(run, "triggering_user_name", None), getattr(run, "run_type", None))


def run_context(dataset: str, run_id: str, actor: str) -> RunContext:
    return RunContext(dataset_run_dir(work_root(), dataset, run_id), run_id, actor, dataset)


def locations(params: dict[str, Any]) -> tuple[Location, Location]:
    src = parse_location(f"azure://{params['source_container']}/{params.get('source_prefix') or ''}")
    dst = parse_location(f"s3://{params['dest_bucket']}/{params.get('dest_prefix') or ''}")
    return src, dst


def stores(params: dict[str, Any], src: Location | str, dst: Location | str, *, workers: int = 8) -> StorePair:
    """Both stores, their settings from the run's Connections."""
    return open_pair(
        src,
        dst,
        azure=azure_settings_from_connection(params["source_conn_id"]),
        s3=s3_settings_from_connection(params["dest_conn_id"]),
        workers=workers,
    )


def destination(params: dict[str, Any], dst: str) -> Any:
    return open_destination(dst, s3=s3_settings_from_connection(params["dest_conn_id"]))


def copy_options(params: dict[str, Any]) -> CopyOptions:
    """The copy options of the Params (a typed error when they are out of range)."""
    part = int(params.get("part_size_mib", 8)) * MiB
    options = CopyOptions(
        part_size=part,
        workers=int(params.get("max_parallel", 8)),
        max_memory=max(512 * MiB, 4 * part),
        dry_run=bool(params.get("dry_run")),
    )
    options.validate()
    return options
