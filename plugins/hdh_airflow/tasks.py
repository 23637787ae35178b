"""Task bodies of ``hdh_migrate_dataset``: each is Params/Connections -> options -> one call -> errors.

The call is a step of ``hdh_migrate.runs`` -- the same function ``hdh-migrate migrate`` calls in sequence --
so the DAG and the command line decide alike and leave the same evidence. Bodies take the run's Params and
small XCom values (paths and counts, never object lists) and return small XCom values. Every body is safe
to re-run: copies skip what is already copied and verified.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from hdh_airflow.context import copy_options, locations, run_context, stores
from hdh_airflow.errors import airflow_errors, raise_failure
from hdh_migrate.audit.state import open_state
from hdh_migrate.runs import migration, tables
from hdh_migrate.runs.migration import InventoryStep, ShardCopy, ShardVerify
from hdh_migrate.runs.pair import StorePair
from hdh_migrate.runs.record import ValidationRef
from hdh_migrate.sizes import human_bytes
from hdh_migrate.transfer.plan import Shard

log = logging.getLogger("hdh_migrate.airflow")


def _pair(params: dict[str, Any], workers: int = 8) -> StorePair:
    with airflow_errors("checking the Params"):
        src, dst = locations(params)
    with airflow_errors("opening the stores"):
        return stores(params, src, dst, workers=workers)


def _state(params: dict[str, Any]) -> Any:
    if params.get("dry_run"):
        return None  # a dry run records nothing
    with airflow_errors("opening the state database"):
        return open_state()


def inventory(params: dict[str, Any], run_id: str, actor: str) -> dict[str, Any]:
    """Prove access to both sides, list the source into a Parquet manifest, register the run."""
    with airflow_errors("checking the Params"):
        options = copy_options(params)  # fail fast on bad Params before any listing
    pair, ctx = _pair(params), run_context(params["dataset"], run_id, actor)
    with airflow_errors("taking the inventory"):
        header = migration.begin(pair, ctx, "migrate", options=options, params=params)
        inv = migration.take_inventory(
            pair, ctx, header, state=_state(params), validation_required=params.get("validation_required")
        )
    log.info(
        "inventory of %s: %s objects, %s -> %s", pair.src, f"{inv.objects:,}", human_bytes(inv.bytes), inv.inventory
    )
    return inv.to_dict()


def plan(params: dict[str, Any], run_id: str, actor: str, inv: dict[str, Any]) -> list[dict[str, Any]]:
    ctx = run_context(params["dataset"], run_id, actor)
    with airflow_errors("planning the shards"):
        shards = migration.plan(ctx, InventoryStep(**inv), max_objects=int(params.get("shard_max_objects") or 0))
    log.info("planned %d shards for %s objects", len(shards), f"{inv['objects']:,}")
    return [s.to_dict() | {"work_dir": inv["work_dir"]} for s in shards]


def _shard(d: dict[str, Any]) -> Shard:
    return Shard(int(d["index"]), str(d["path"]), int(d["objects"]), int(d["bytes"]))


def copy_shard(params: dict[str, Any], run_id: str, actor: str, shard: dict[str, Any], try_number: int) -> dict:
    with airflow_errors("checking the Params"):
        options = copy_options(params)
    pair, ctx = _pair(params, options.workers), run_context(params["dataset"], run_id, actor)
    with airflow_errors(f"copying {shard['label']}"):
        copied = migration.copy_shard(pair, ctx, _shard(shard), options, try_number=try_number)
        c = copied.counts
        log.info(
            "%s: copied %d (%s), skipped %d already copied, failed %d, rejected %d, retried %d",
            shard["label"],
            c.copied,
            human_bytes(c.copied_bytes),
            c.skipped,
            c.failed,
            c.rejected,
            c.retried,
        )
        raise_failure(copied.failure())
    return copied.to_dict() | {"work_dir": shard["work_dir"]}


def verify_shard(params: dict[str, Any], run_id: str, actor: str, shard: dict[str, Any]) -> dict[str, Any]:
    if params.get("dry_run"):
        raise AirflowSkipException("dry run: nothing was copied, nothing to verify")
    workers = int(params["max_parallel"])
    pair, ctx = _pair(params, workers), run_context(params["dataset"], run_id, actor)
    with airflow_errors(f"verifying {shard['label']}"):
        verified = migration.verify_shard(pair, ctx, _shard(shard), params["verify"], workers=workers)
        raise_failure(verified.failure())
    log.info(
        "%s verified (%s): %d objects match, %s re-read",
        shard["label"],
        params["verify"],
        verified.counts.matched,
        human_bytes(verified.counts.bytes_read),
    )
    return verified.to_dict()


def tables_to_validate(params: dict[str, Any], run_id: str, actor: str, inv: dict[str, Any]) -> list[dict]:
    """Tables = first-level folders under the source prefix that have a suite (or the ones asked for)."""
    if params.get("dry_run"):
        return []
    pair, ctx = _pair(params), run_context(params["dataset"], run_id, actor)
    with airflow_errors("finding the tables to validate"):
        jobs = tables.tables_to_validate(pair, ctx, inv["inventory"], params.get("validate_tables") or [])
    return [j.to_dict() for j in jobs]


def validate(params: dict[str, Any], run_id: str, actor: str, item: dict[str, Any]) -> dict[str, Any]:
    """Run the table's suite on both sides, compare the metrics; fail naming table, side and expectations."""
    pair, ctx = _pair(params), run_context(params["dataset"], run_id, actor)
    processes = int(params.get("validate_processes") or 1)
    with airflow_errors(f"validating table {item['table']}"):
        outcome = tables.validate_table(pair, ctx, tables.TableJob(**item), processes=processes, state=_state(params))
        raise_failure(outcome.failure())
    rows = outcome.result["source"].get("metrics", {}).get("row_count")
    log.info(
        "table %s valid on both sides, metrics equal (%s rows); Data Docs: %s",
        item["table"],
        rows,
        outcome.ref.data_docs,
    )
    return vars(outcome.ref)


def summary(
    params: dict[str, Any],
    run_id: str,
    actor: str,
    copies: list[dict[str, Any]],
    verifies: list[dict[str, Any]],
    validations: list[dict[str, Any]],
) -> dict[str, Any]:
    """Look for extra objects at the destination, write summary.json, record the run."""
    pair, ctx = _pair(params), run_context(params["dataset"], run_id, actor)
    refs = [ValidationRef(**v) for v in validations]
    with airflow_errors("summarizing the run"):
        record = migration.summarize(
            pair,
            ctx,
            [ShardCopy.from_dict(c) for c in copies],
            [ShardVerify.from_dict(v) for v in verifies],
            refs,
            depth=None if params.get("dry_run") else params["verify"],
            state=_state(params),
            validation_results=tables.results_of(refs),
        )
        raise_failure(migration.extras_failure(record))
    assert record.inventory is not None
    return {
        "work_dir": record.work_dir,
        "summary": str(Path(record.work_dir) / "summary.json"),
        "objects": record.inventory.objects,
        "bytes": record.inventory.bytes,
        "copied": record.copy.counts.copied if record.copy else 0,
        "verified": record.verification.counts.matched if record.verification else 0,
        "ok": record.ok,
    }


__all__ = ["copy_shard", "inventory", "plan", "summary", "tables_to_validate", "validate", "verify_shard"]
