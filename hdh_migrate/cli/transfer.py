"""``hdh-migrate copy | verify | inventory | migrate``: the data-moving verbs.

``copy`` and ``verify`` are the one-shard case of a migration run, rclone-style (no dataset, no state
database); ``migrate`` is the command-line twin of the ``hdh_migrate_dataset`` DAG: the same steps, in
sequence, recorded in the state database under a dataset name. All of them write their evidence and
their run record (``summary.json``) to a work folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from hdh_migrate.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    count,
    db_option,
    errors_to_stderr,
    positive_int,
    print_json,
    size,
)
from hdh_migrate.sizes import MiB, human_bytes


class _NoPandas:
    """Import hook refusing pandas: pyarrow loads it lazily (0.4 to 2 s per run) though copy, verify and
    inventory never need it, and treats its absence as normal. validate (Great Expectations) is unaffected."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not loaded by this command", name=name)


def _without_pandas() -> None:
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


def _s3_settings(args: argparse.Namespace) -> Any:
    """The environment's S3 settings, with --s3-provider's profile when given (None: the factory's default)."""
    if not getattr(args, "s3_provider", None):
        return None
    from hdh_migrate.stores.settings import s3_settings_from_env

    return s3_settings_from_env(dict(os.environ, HDH_S3_PROVIDER=args.s3_provider))


def _pair(args: argparse.Namespace, workers: int) -> Any:
    from hdh_migrate.runs.pair import open_pair

    return open_pair(args.source, args.destination, s3=_s3_settings(args), workers=workers)


def _context(args: argparse.Namespace, kind: str, source: str, **kw: Any) -> Any:
    from hdh_migrate.runs.context import RunContext, cli_work_dir

    work = Path(args.work_dir) if args.work_dir else cli_work_dir(kind, source)
    return RunContext(work, **kw)


def _copy_options(args: argparse.Namespace) -> Any:
    from hdh_migrate.transfer.copier import CopyOptions

    return CopyOptions(
        part_size=args.part_size,
        workers=args.workers,
        max_memory=args.max_memory,
        dry_run=args.dry_run,
        bwlimit=args.bwlimit,
        retries=getattr(args, "retries", 3),
        checksum=getattr(args, "checksum", False),
    )


# -- copy / verify / inventory ------------------------------------------------------------------------------
def cmd_copy(args: argparse.Namespace) -> int:
    _without_pandas()
    from hdh_migrate.runs.migration import run_copy

    options = _copy_options(args)
    options.validate()
    pair = _pair(args, args.workers)
    ctx = _context(args, "copy", f"{pair.src.container}-{pair.src.prefix}".strip("/"), flat=True)
    record = run_copy(pair, ctx, options, verify=args.verify, show_progress=not args.no_progress)
    summary = record.to_json()
    if args.json:
        print_json(summary)
    else:
        _print_copy(summary, args)
    errors_to_stderr(summary["counts"]["errors"])
    return EXIT_OK if record.ok else EXIT_FAILED


def _print_copy(summary: dict[str, Any], args: argparse.Namespace) -> None:
    c = summary["counts"]
    if args.dry_run:
        print(
            f"dry run: {c['would_copy']:,} objects ({human_bytes(c['would_copy_bytes'])}) would be copied, "
            f"{c['skipped']:,} ({human_bytes(c['skipped_bytes'])}) are already at the destination"
        )
    else:
        print(
            f"copied {c['copied']:,} objects ({human_bytes(c['copied_bytes'])}), "
            f"skipped {c['skipped']:,} already copied ({human_bytes(c['skipped_bytes'])}), "
            f"failed {c['failed']:,}, rejected {c['rejected']:,}, retried {c['retried']:,} "
            f"in {summary['seconds']:.1f} s ({summary.get('mib_per_s') or 0:.1f} MiB/s)"
        )
    inv = summary["inventory"]
    print(f"inventory: {inv['path']} ({inv['objects']:,} objects, sha256 {inv['sha256'][:16]}...)")
    print(f"results:   {summary['results']['path']}")
    if summary.get("verification"):
        _print_verification(summary["verification"], summary["verification"]["files"], args.max_print)
    print(f"summary:   {Path(summary['work_dir']) / 'summary.json'}")


def cmd_verify(args: argparse.Namespace) -> int:
    _without_pandas()
    from hdh_migrate.runs.migration import run_verify

    pair = _pair(args, args.workers)
    ctx = _context(args, "verify", f"{pair.src.container}-{pair.src.prefix}".strip("/"), flat=True)
    record = run_verify(
        pair, ctx, depth=args.depth, workers=args.workers, extras=not args.no_extras, show_progress=not args.no_progress
    )
    summary = record.to_json()
    if args.json:
        print_json(summary)
    else:
        _print_verification(summary["verification"], summary["verification"]["files"], args.max_print)
    return EXIT_OK if record.ok else EXIT_FAILED


def _print_verification(v: dict[str, Any], files: list[dict[str, Any]], max_print: int) -> None:
    c = v["counts"]
    for p in c["problems"][:max_print]:
        where = p["key"] or p["name"]
        print(f"{p['problem'].upper():20} {where}" + (f"  ({p['detail']})" if p["detail"] else ""))
    results = files[0]["path"] if files else "-"
    if len(c["problems"]) > max_print:
        print(f"... and {len(c['problems']) - max_print} more (see {results})")
    print(
        f"verify ({v['depth']}) {'OK' if v['ok'] else 'FAILED'}: {c['matched']:,}/{c['checked']:,} objects match; "
        f"{c['missing']:,} missing, {c['differs']:,} differing, {c['extra']:,} extra, {c['errors']:,} errors; "
        f"{human_bytes(c['bytes_read'])} re-read in {v['seconds'] or 0:.1f} s"
    )
    print(f"results:   {results}")


def cmd_inventory(args: argparse.Namespace) -> int:
    _without_pandas()
    from hdh_migrate.locations import parse_location
    from hdh_migrate.stores import open_store
    from hdh_migrate.transfer.manifest import write_inventory

    src = parse_location(args.source, expect="azure")
    store = open_store(src)
    store.check_access(src.prefix)
    stats = write_inventory(store.list(src.prefix), Path(args.out))
    print(f"{stats.objects:,} objects, {human_bytes(stats.bytes)} -> {stats.path} (sha256 {stats.sha256})")
    return EXIT_OK


# -- migrate ------------------------------------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace) -> int:
    """The DAG's steps, in sequence: a failed step stops the run with its typed error (as a failed task)."""
    from hdh_migrate.audit.state import open_state
    from hdh_migrate.runs.context import cli_actor, cli_run_id
    from hdh_migrate.runs.pipeline import MigrationRequest, run_migration

    options = _copy_options(args)
    options.validate()
    pair = _pair(args, args.workers)
    ctx = _context(
        args, "migrate", args.dataset, run_id=cli_run_id("migrate"), actor=cli_actor(args.actor), dataset=args.dataset
    )
    request = MigrationRequest(
        depth=args.verify,
        tables=args.validate_table or [],
        validate_processes=args.validate_processes,
        validation_required=not args.no_validation_required,
        shard_max_objects=args.shard_max_objects,
        params=_params(args, pair),
    )
    record = run_migration(pair, ctx, options, request, state=open_state(args.db))
    if args.json:
        print_json(record.to_json())
    else:
        _print_migration(record.to_json())
    return EXIT_OK if record.ok else EXIT_FAILED


def _params(args: argparse.Namespace, pair: Any) -> dict[str, Any]:
    """The run's request in the DAG's Param names, so that a run's record reads the same whichever way it was
    started (the command line has no Connections: its credentials come from the environment)."""
    return {
        "dataset": args.dataset,
        "source_container": pair.src.container,
        "source_prefix": pair.src.prefix.rstrip("/") or None,
        "dest_bucket": pair.dst.container,
        "dest_prefix": pair.dst.prefix.rstrip("/") or None,
        "part_size_mib": args.part_size // MiB if args.part_size % MiB == 0 else args.part_size / MiB,
        "max_parallel": args.workers,
        "verify": args.verify,
        "validate_tables": args.validate_table or [],
        "validate_processes": args.validate_processes,
        "validation_required": not args.no_validation_required,
        "shard_max_objects": args.shard_max_objects,
        "dry_run": args.dry_run,
    }


def _print_migration(s: dict[str, Any]) -> None:
    v = s.get("verification") or {}
    print(
        f"{s['dataset']}: {'OK' if s['ok'] else 'FAILED'}: {s['inventory']['objects']:,} objects in {s['shards']} "
        f"shard(s); copied {s.get('copied', 0):,}, skipped {s.get('skipped', 0):,}; "
        f"verified {v.get('counts', {}).get('matched', 0):,} ({v.get('depth', '-')})"
    )
    for t in s["validations"]:
        print(f"  table {t['table']}: {'valid' if t['success'] else 'FAILED'} ({t['result']})")
    print(f"summary:   {Path(s['work_dir']) / 'summary.json'} (run {s['run_id']})")


# -- the parser ---------------------------------------------------------------------------------------------
def _common(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("source", help="azure://CONTAINER/PREFIX")
    sp.add_argument("destination", help="s3://BUCKET/PREFIX (the bucket must exist)")
    sp.add_argument(
        "--workers",
        type=positive_int,
        default=8,
        help="parallel transfers (default 8): parts of large objects in flight; up to 4 x N "
        "small objects are in flight at once (the memory budget bounds the bytes held)",
    )
    sp.add_argument(
        "--work-dir", help="where the inventory, results and summary go (default $HDH_MIGRATE_HOME/runs/<time>-...)"
    )
    sp.add_argument(
        "--s3-provider",
        help="S3 provider profile (seaweedfs, ovhcloud, outscale, scaleway, cloudtemple, aws, generic); "
        "default $HDH_S3_PROVIDER",
    )
    sp.add_argument("--json", action="store_true", help="print the summary as JSON")


def _copying(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--part-size",
        type=size,
        default="8MiB",
        help="multipart part size (default 8MiB; grows automatically to stay under 10,000 parts)",
    )
    sp.add_argument("--max-memory", type=size, default="512MiB", help="budget for data in flight (default 512MiB)")
    sp.add_argument("--dry-run", action="store_true", help="list and compare, copy nothing")
    sp.add_argument("--bwlimit", type=size, default=None, help="cap the read bandwidth, per second (e.g. 50MiB)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _register_copy(sub)
    _register_verify(sub)
    inv = sub.add_parser("inventory", help="write the Parquet inventory of an Azure prefix")
    inv.add_argument("source", help="azure://CONTAINER/PREFIX")
    inv.add_argument("--out", required=True, help="the Parquet file to write")
    inv.set_defaults(func=cmd_inventory)
    _register_migrate(sub)


def _register_copy(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("copy", help="copy every blob under an Azure prefix to an S3 prefix, checked end to end")
    _common(c)
    c.add_argument("--no-progress", action="store_true", help="no progress line")
    _copying(c)
    c.add_argument("--retries", type=int, default=3, help="retries per object for transient errors (default 3)")
    c.add_argument(
        "--checksum",
        action="store_true",
        help="re-read destination objects to decide what is already copied (slow, thorough)",
    )
    c.add_argument(
        "--verify",
        choices=("quick", "full", "both"),
        default=None,
        help="after the copy, verify every object as `hdh-migrate verify --depth` would (one process, "
        "one source listing); the exit status needs both to pass",
    )
    c.add_argument("--max-print", type=int, default=200, help="verification problems printed")
    c.set_defaults(func=cmd_copy)


def _register_verify(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    v = sub.add_parser("verify", help="re-read the destination and check every object against the source")
    _common(v)
    v.add_argument("--no-progress", action="store_true", help="no progress line")
    v.add_argument(
        "--depth",
        choices=("quick", "full", "both"),
        default="full",
        help="quick: sizes, versions, recorded hashes; full (default): re-read and hash every "
        "destination byte; both: re-read the source too",
    )
    v.add_argument("--no-extras", action="store_true", help="do not report destination objects with no source")
    v.add_argument("--max-print", type=int, default=200, help="problems printed (all are in the results file)")
    v.set_defaults(func=cmd_verify)


def _register_migrate(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    m = sub.add_parser(
        "migrate",
        help="migrate one dataset as the hdh_migrate_dataset DAG does: inventory, shards, copy, verify, "
        "validate, summary, recorded in the state database",
    )
    _common(m)
    _copying(m)
    m.add_argument("--dataset", required=True, help="the dataset's name (registered if new)")
    m.add_argument(
        "--verify", choices=("quick", "full", "both"), default="full", help="verification depth (default full)"
    )
    m.add_argument(
        "--validate-table",
        action="append",
        help="a table folder to validate with expectations/NAME.json (repeatable; default: every folder that "
        "has a suite)",
    )
    m.add_argument(
        "--validate-processes", type=positive_int, default=1, help="processes per table validation (default 1)"
    )
    m.add_argument(
        "--no-validation-required",
        action="store_true",
        help="a dataset that is not tabular: its cutover will not need a validation (recorded in the ledger)",
    )
    m.add_argument("--shard-max-objects", type=count, default=0, help="cap on objects per shard (default 0: automatic)")
    m.add_argument("--actor", help="who runs this, for the audit trail (default $HDH_MIGRATE_ACTOR or login)")
    db_option(m)
    m.set_defaults(func=cmd_migrate)
