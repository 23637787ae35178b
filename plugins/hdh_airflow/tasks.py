"""Task bodies of the migration DAGs: thin wrappers over ``hdh_migrate`` that speak Airflow.

Each body takes the run's Params and small XCom values (paths and counts, never object lists), opens the
stores from Connections, calls the core library, and turns its typed errors into Airflow's retry
semantics: a permanent error (bad credentials, missing container, checksum mismatch) raises
``AirflowFailException`` with what to do; a transient one (throttling, store unreachable, source changed)
propagates and Airflow retries it with exponential backoff. Every body is safe to re-run: copies skip
what is already copied and verified.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from hdh_airflow.connections import azure_settings_from_connection, s3_settings_from_connection
from hdh_migrate import __version__
from hdh_migrate.errors import HdhMigrateError, PermanentError, TransientError
from hdh_migrate.locations import Location, parse_location
from hdh_migrate.runs.migration import open_pair
from hdh_migrate.sizes import MiB, human_bytes
from hdh_migrate.stores import AzureBlobStore, S3Store
from hdh_migrate.stores.settings import encryption_summary
from hdh_migrate.transfer.copier import CopyOptions, copy_objects
from hdh_migrate.transfer.keyindex import KeyIndex
from hdh_migrate.transfer.manifest import ResultsWriter, iter_inventory, write_inventory
from hdh_migrate.transfer.plan import plan_shards
from hdh_migrate.transfer.verify import find_extras, verify_objects

log = logging.getLogger("hdh_migrate.airflow")


class ShardFailedError(TransientError):
    """Some objects of a shard failed for transient reasons: Airflow retries the shard (it resumes)."""

    code = "shard_transient_failures"


def work_root() -> Path:
    """Where runs keep their manifests and evidence; must be shared by all workers of a deployment."""
    if os.environ.get("HDH_MIGRATE_WORK_DIR"):
        return Path(os.environ["HDH_MIGRATE_WORK_DIR"])
    return Path(os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))) / "hdh-migrate"


def run_dir(dataset: str, run_id: str) -> Path:
    return work_root() / dataset / re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)


@contextlib.contextmanager
def airflow_errors(what: str) -> Iterator[None]:
    """Permanent errors fail the task at once; transient ones are left to Airflow's retries."""
    try:
        yield
    except PermanentError as exc:
        raise AirflowFailException(f"[{exc.code}] {what}: {exc}") from exc
    except TransientError as exc:
        log.warning("[%s] %s: %s (Airflow will retry with backoff)", exc.code, what, exc)
        raise


def locations(params: dict[str, Any]) -> tuple[Location, Location]:
    with airflow_errors("checking the Params"):
        src = parse_location(f"azure://{params['source_container']}/{params.get('source_prefix') or ''}")
        dst = parse_location(f"s3://{params['dest_bucket']}/{params.get('dest_prefix') or ''}")
    return src, dst


def open_stores(params: dict[str, Any], workers: int = 8) -> tuple[Location, Location, AzureBlobStore, S3Store]:
    src, dst = locations(params)
    with airflow_errors("opening the stores"):
        return open_pair(
            str(src),
            str(dst),
            azure=azure_settings_from_connection(params["source_conn_id"]),
            s3=s3_settings_from_connection(params["dest_conn_id"]),
            workers=workers,
            check=False,
        )


def options_from_params(params: dict[str, Any]) -> CopyOptions:
    part = int(params["part_size_mib"]) * MiB
    workers = int(params["max_parallel"])
    options = CopyOptions(
        part_size=part, workers=workers, max_memory=max(512 * MiB, 4 * part), dry_run=bool(params.get("dry_run"))
    )
    with airflow_errors("checking the Params"):
        options.validate()
    return options


# -- task bodies -------------------------------------------------------------------------------------
def inventory(params: dict[str, Any], run_id: str, triggered_by: str | None) -> dict[str, Any]:
    """Prove access to both sides, then list the source into a Parquet manifest."""
    options_from_params(params)  # fail fast on bad Params before any listing
    src, dst, source, dest = open_stores(params)
    with airflow_errors("opening the source container"):
        source.check_access(src.prefix)
    with airflow_errors("opening the destination bucket"):
        dest.check_access(dst.prefix)
    work = run_dir(params["dataset"], run_id)
    work.mkdir(parents=True, exist_ok=True)
    with airflow_errors("listing the source"):
        stats = write_inventory(source.list(src.prefix), work / "inventory.parquet")
    with airflow_errors("listing the destination"):
        # first tries of the copy tasks skip the HEAD request for keys this listing shows absent
        KeyIndex(o.name for o in dest.list(dst.prefix)).save(str(work / "dest_index.npy"))
    run = {
        "dataset": params["dataset"],
        "run_id": run_id,
        "triggered_by": triggered_by,
        "source": str(src),
        "source_endpoint": source.settings.describe(),
        "destination": str(dst),
        "destination_endpoint": dest.settings.describe(),
        "provider": dest.settings.provider,
        "encryption": encryption_summary(dest.settings),
        "params": {k: v for k, v in params.items()},
        "tool": f"hdh-migrate/{__version__}",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (work / "run.json").write_text(json.dumps(run, indent=2, default=str))
    if not params.get("dry_run"):
        from hdh_migrate.audit.state import open_state
        from hdh_migrate.runs.cutover import record_migration_started

        with airflow_errors("recording the run in the migration state database"):
            record_migration_started(
                open_state(),
                params["dataset"],
                str(src),
                str(dst),
                actor=triggered_by or "airflow",
                run_id=run_id,
                validation_required=params.get("validation_required"),
            )
    log.info("inventory of %s: %s objects, %s -> %s", src, f"{stats.objects:,}", human_bytes(stats.bytes), stats.path)
    return {
        "work_dir": str(work),
        "inventory": stats.path,
        "objects": stats.objects,
        "bytes": stats.bytes,
        "sha256": stats.sha256,
    }


def plan(inv: dict[str, Any], *, max_objects: int = 0, max_shards: int = 1000) -> list[dict[str, Any]]:
    shards = plan_shards(
        inv["inventory"], Path(inv["work_dir"]) / "shards", max_shards=max_shards, max_objects=max_objects or None
    )
    log.info("planned %d shards for %s objects", len(shards), f"{inv['objects']:,}")
    return [s.to_dict() | {"work_dir": inv["work_dir"]} for s in shards]


def copy_shard(params: dict[str, Any], shard: dict[str, Any], try_number: int) -> dict[str, Any]:
    options = options_from_params(params)
    src, dst, source, dest = open_stores(params, options.workers)
    results_path = Path(shard["work_dir"]) / "results" / f"copy-{shard['index']:05d}-try{try_number}.parquet"
    rejected_file = _rejected_by_verify(shard)
    force = json.loads(rejected_file.read_text()) if rejected_file.exists() else []
    if force:
        log.info("%s: %d objects rejected by the last verification are copied again", shard["label"], len(force))
    index_file = Path(shard["work_dir"]) / "dest_index.npy"
    # only a first try may trust the listing taken at inventory time: a retry or a cleared task must look
    # at what its earlier tries wrote
    dest_index = KeyIndex.load(str(index_file)) if try_number == 1 and index_file.exists() else None
    with airflow_errors(f"copying {shard['label']}"), ResultsWriter(results_path) as results:
        counts = copy_objects(
            source,
            dest,
            src,
            dst,
            iter_inventory(shard["path"]),
            options,
            results=results,
            force=force,
            dest_index=dest_index,
        )
    log.info(
        "%s: copied %d (%s), skipped %d already copied, failed %d, rejected %d, retried %d",
        shard["label"],
        counts.copied,
        human_bytes(counts.copied_bytes),
        counts.skipped,
        counts.failed,
        counts.rejected,
        counts.retried,
    )
    if not counts.ok:
        lines = "; ".join(f"{e['name']}: [{e['code']}] {e['message']}" for e in counts.errors[:5])
        more = f" (and {len(counts.errors) - 5} more in {results_path})" if len(counts.errors) > 5 else ""
        if all(e["transient"] == "true" for e in counts.errors):
            raise ShardFailedError(f"{shard['label']}: {counts.failed} objects failed transiently: {lines}{more}")
        raise AirflowFailException(
            f"[{counts.errors[0]['code']}] {shard['label']}: {counts.failed + counts.rejected} objects could not be "
            f"copied: {lines}{more}. Fix the cause, then clear this task: it resumes and re-copies only these."
        )
    if force:
        rejected_file.replace(rejected_file.with_suffix(".recopied.json"))
    return {
        "index": shard["index"],
        "label": shard["label"],
        "path": shard["path"],
        "work_dir": shard["work_dir"],
        "objects": shard["objects"],
        "bytes": shard["bytes"],
        "copied": counts.copied,
        "copied_bytes": counts.copied_bytes,
        "skipped": counts.skipped,
        "retried": counts.retried,
        "results": str(results_path),
        "dry_run": options.dry_run,
    }


def _rejected_by_verify(shard: dict[str, Any]) -> Path:
    return Path(shard["work_dir"]) / "results" / f"verify-rejected-{shard['index']:05d}.json"


def verify_shard(params: dict[str, Any], shard: dict[str, Any]) -> dict[str, Any]:
    if params.get("dry_run"):
        raise AirflowSkipException("dry run: nothing was copied, nothing to verify")
    depth = params["verify"]
    src, dst, source, dest = open_stores(params, int(params["max_parallel"]))
    results_path = Path(shard["work_dir"]) / "results" / f"verify-{shard['index']:05d}.parquet"
    with airflow_errors(f"verifying {shard['label']}"), ResultsWriter(results_path) as results:
        counts = verify_objects(
            source,
            dest,
            src,
            dst,
            iter_inventory(shard["path"]),
            depth=depth,
            workers=int(params["max_parallel"]),
            results=results,
        )
    if not counts.ok:
        # the copy task of this shard, once cleared, copies exactly these objects again
        _rejected_by_verify(shard).write_text(json.dumps(sorted({p["name"] for p in counts.problems if p["name"]})))
        lines = "; ".join(f"{p['key'] or p['name']}: {p['problem']} ({p['detail']})" for p in counts.problems[:5])
        raise AirflowFailException(
            f"[verification_failed] {shard['label']}: {counts.missing} missing, {counts.differs} differing, "
            f"{counts.errors} unreadable: {lines}. Clear the copy task of this shard (with downstream) to "
            f"re-copy exactly these objects; details in {results_path}"
        )
    log.info(
        "%s verified (%s): %d objects match, %s re-read",
        shard["label"],
        depth,
        counts.matched,
        human_bytes(counts.bytes_read),
    )
    return {
        "index": shard["index"],
        "matched": counts.matched,
        "bytes_read": counts.bytes_read,
        "depth": depth,
        "results": str(results_path),
    }


def expectations_dir() -> Path:
    """The reviewed suites (expectations/NAME.json); in the image, /opt/hdh-migrate/expectations."""
    if os.environ.get("HDH_MIGRATE_EXPECTATIONS_DIR"):
        return Path(os.environ["HDH_MIGRATE_EXPECTATIONS_DIR"])
    return Path(__file__).resolve().parents[2] / "expectations"


def tables_to_validate(params: dict[str, Any], inv: dict[str, Any]) -> list[dict[str, Any]]:
    """Tables = first-level folders under the source prefix that have a suite (or the ones asked for)."""
    if params.get("dry_run"):
        return []
    import pyarrow.parquet as pq

    src, _ = locations(params)
    suites = {p.stem: p for p in sorted(expectations_dir().glob("*.json")) if p.stem.count(".") == 0}
    present: set[str] = set()
    for batch in pq.ParquetFile(inv["inventory"]).iter_batches(columns=["name"], batch_size=50_000):
        for name in batch.column("name").to_pylist():
            rel = name[len(src.prefix) :]
            if "/" in rel:
                present.add(rel.split("/", 1)[0])
    requested = [t for t in (params.get("validate_tables") or []) if t]
    if requested:
        no_suite = [t for t in requested if t not in suites]
        no_data = [t for t in requested if t not in present]
        if no_suite or no_data:
            raise AirflowFailException(
                f"[config] validate_tables: no suite in {expectations_dir()} for {no_suite or 'none'}; "
                f"no folder under {src} for {no_data or 'none'}. Derive a suite with "
                "`hdh-migrate expectations from-schema` or fix the table names."
            )
        tables = requested
    else:
        tables = sorted(present & suites.keys())
    log.info("tables to validate with Great Expectations: %s", tables or "none")
    return [{"table": t, "suite": str(suites[t]), "work_dir": inv["work_dir"]} for t in tables]


def validate(params: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Run the table's suite on both sides, compare the metrics; fail naming table, side and expectations."""
    from hdh_migrate.validation.table import failure_message, validate_table

    src, dst, source, dest = open_stores(params)
    work = Path(item["work_dir"])
    with airflow_errors(f"validating table {item['table']}"):
        result = validate_table(
            item["table"],
            item["suite"],
            str(src),
            str(dst),
            data_docs_dir=work / "data_docs" / item["table"],
            source_store=source,
            destination_store=dest,
            raise_on_failure=False,
            jobs=int(params.get("validate_processes") or 1),
        )
    out = work / "validation" / f"{item['table']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    if not result["success"]:
        from hdh_migrate.audit.state import open_state
        from hdh_migrate.runs.cutover import record_validation
        from hdh_migrate.transfer.fingerprint import fingerprint_inventory

        run = json.loads((work / "run.json").read_text())
        with airflow_errors("recording the failed validation"):  # blocks the cutover, with the evidence
            record_validation(
                open_state(),
                params["dataset"],
                [result],
                actor=run.get("triggered_by") or "airflow",
                run_id=run["run_id"],
                source_fingerprint=fingerprint_inventory(work / "inventory.parquet"),
            )
        raise AirflowFailException(f"[validation_failed] {failure_message(result)} (details: {out})")
    rows = result["source"].get("metrics", {}).get("row_count")
    log.info(
        "table %s valid on both sides, metrics equal (%s rows); Data Docs: %s",
        item["table"],
        rows,
        result.get("data_docs"),
    )
    return {"table": item["table"], "success": True, "result": str(out), "data_docs": result.get("data_docs")}


def summary(
    params: dict[str, Any],
    inv: dict[str, Any],
    copies: list[dict[str, Any]],
    verifies: list[dict[str, Any]],
    validations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check extras on the destination, gather the shard results, write summary.json."""
    work = Path(inv["work_dir"])
    src, dst, _source, dest = open_stores(params)
    extras: list[str] = []
    if not params.get("dry_run"):
        with airflow_errors("looking for extra objects at the destination"):
            for key in find_extras(dest, dst, src, iter_inventory(inv["inventory"])):
                extras.append(key)
    run = json.loads((work / "run.json").read_text())
    copied = sum(c["copied"] for c in copies)
    result = run | {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "inventory": {k: inv[k] for k in ("inventory", "objects", "bytes", "sha256")},
        "shards": len(copies),
        "copied": copied,
        "copied_bytes": sum(c["copied_bytes"] for c in copies),
        "skipped": sum(c["skipped"] for c in copies),
        "retried": sum(c["retried"] for c in copies),
        "verified": sum(v["matched"] for v in verifies),
        "verify_depth": params["verify"],
        "extra_objects": len(extras),
        "extra_examples": extras[:20],
        "validations": [{k: v[k] for k in ("table", "success", "result", "data_docs")} for v in validations or []],
        "copy_results": [c["results"] for c in copies],
        "verify_results": [v["results"] for v in verifies],
        "dry_run": bool(params.get("dry_run")),
        "ok": not extras and (bool(params.get("dry_run")) or sum(v["matched"] for v in verifies) == inv["objects"]),
    }
    (work / "summary.json").write_text(json.dumps(result, indent=2, default=str))
    if not params.get("dry_run"):
        from hdh_migrate.audit.state import open_state
        from hdh_migrate.runs.cutover import record_migration_finished, record_validation

        state = open_state()
        actor = run.get("triggered_by") or "airflow"
        with airflow_errors("recording the verification in the migration state database"):
            record_migration_finished(state, params["dataset"], result, actor=actor, run_id=run["run_id"])
            if validations:
                tables = [json.loads(Path(v["result"]).read_text()) for v in validations]
                record_validation(state, params["dataset"], tables, actor=actor, run_id=run["run_id"])
    if extras:
        raise AirflowFailException(
            f"[extra_objects] {len(extras)} objects under {dst} have no source (e.g. {extras[:3]}): the destination "
            "prefix is shared or holds leftovers; clean it or choose another dest_prefix before cutover"
        )
    return {
        "work_dir": str(work),
        "summary": str(work / "summary.json"),
        "objects": inv["objects"],
        "bytes": inv["bytes"],
        "copied": copied,
        "verified": result["verified"],
        "ok": result["ok"],
    }


__all__ = ["HdhMigrateError", "copy_shard", "inventory", "plan", "summary", "verify_shard"]
