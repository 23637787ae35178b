"""The ``hdh-migrate`` command line.

Exit codes: 0 success; 1 the job ran but some objects failed or did not match; 2 bad input (arguments,
credentials, missing container or bucket); 130 interrupted. Errors print what happened and what to do.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from hdh_migrate import __version__
from hdh_migrate.cli import data, datasets
from hdh_migrate.errors import HdhMigrateError
from hdh_migrate.sizes import human_bytes, parse_size

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except HdhMigrateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# -- rig ---------------------------------------------------------------------------------------------
def cmd_rig(args: argparse.Namespace) -> int:
    from hdh_migrate.dev import rig

    if args.rig_cmd == "up":
        rig.up()
        if args.bucket:
            from hdh_migrate.stores import S3Store
            from hdh_migrate.stores.settings import s3_settings_from_env

            env = rig.env()
            settings = s3_settings_from_env(env)
            for b in args.bucket:
                S3Store(settings, b).create_bucket(object_lock=args.object_lock)
                print(f"rig: bucket s3://{b}/ ready", file=sys.stderr)
        return EXIT_OK
    if args.rig_cmd == "down":
        rig.down(purge=args.purge)
        return EXIT_OK
    if args.rig_cmd == "env":
        for k, v in rig.env(reader=args.reader).items():
            print(f"export {k}={shlex.quote(v)}")
        return EXIT_OK
    if args.rig_cmd == "status":
        st = rig.status()
        for name, s in st.items():
            state = "up" if s["listening"] else "down"
            owner = f"pid {s['pid']}" if s["alive"] else "started elsewhere" if s["listening"] else "-"
            print(f"{name:10} {state:5} port {s['port']} ({owner})")
        return EXIT_OK if all(s["listening"] for s in st.values()) else EXIT_FAILED
    raise AssertionError(args.rig_cmd)


# -- copy / verify -----------------------------------------------------------------------------------
def _s3_overrides(args: argparse.Namespace) -> Any:
    if not getattr(args, "s3_provider", None):
        return None
    env = dict(os.environ, HDH_S3_PROVIDER=args.s3_provider)
    from hdh_migrate.stores.settings import s3_settings_from_env

    return s3_settings_from_env(env)


def _print_errors(errors: list[dict[str, str]], limit: int = 20) -> None:
    for e in errors[:limit]:
        print(f"  FAILED  {e.get('name') or e.get('key')}: {e.get('message') or e.get('detail')}", file=sys.stderr)
    if len(errors) > limit:
        print(f"  ... and {len(errors) - limit} more (see the results file)", file=sys.stderr)


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


def cmd_copy(args: argparse.Namespace) -> int:
    _without_pandas()
    from hdh_migrate.runs.migration import run_copy
    from hdh_migrate.transfer.copier import CopyOptions

    options = CopyOptions(
        part_size=args.part_size,
        workers=args.workers,
        max_memory=args.max_memory,
        dry_run=args.dry_run,
        bwlimit=args.bwlimit,
        retries=args.retries,
        checksum=args.checksum,
    )
    summary = run_copy(
        args.source,
        args.destination,
        options,
        work_dir=Path(args.work_dir) if args.work_dir else None,
        s3=_s3_overrides(args),
        show_progress=not args.no_progress,
        verify=args.verify,
    )
    c = summary["counts"]
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
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
                f"in {summary['seconds']:.1f} s ({summary['mib_per_s'] or 0:.1f} MiB/s)"
            )
        print(
            f"inventory: {summary['inventory']['path']} ({summary['inventory']['objects']:,} objects, "
            f"sha256 {summary['inventory']['sha256'][:16]}...)"
        )
        print(f"results:   {summary['results']['path']}")
        if "verify" in summary:
            _print_verify(summary["verify"], args.max_print)
        print(f"summary:   {Path(summary['work_dir']) / 'summary.json'}")
    _print_errors(c["errors"])
    return EXIT_OK if summary["ok"] else EXIT_FAILED


def cmd_verify(args: argparse.Namespace) -> int:
    _without_pandas()
    from hdh_migrate.runs.migration import run_verify

    summary = run_verify(
        args.source,
        args.destination,
        depth=args.depth,
        workers=args.workers,
        extras=not args.no_extras,
        work_dir=Path(args.work_dir) if args.work_dir else None,
        s3=_s3_overrides(args),
        show_progress=not args.no_progress,
    )
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_verify(summary, args.max_print)
    return EXIT_OK if summary["ok"] else EXIT_FAILED


def _print_verify(summary: dict[str, Any], max_print: int) -> None:
    c = summary["counts"]
    for p in c["problems"][:max_print]:
        where = p["key"] or p["name"]
        print(f"{p['problem'].upper():20} {where}" + (f"  ({p['detail']})" if p["detail"] else ""))
    if len(c["problems"]) > max_print:
        print(f"... and {len(c['problems']) - max_print} more (see {summary['results']['path']})")
    verdict = "OK" if summary["ok"] else "FAILED"
    print(
        f"verify ({summary['depth']}) {verdict}: {c['matched']:,}/{c['checked']:,} objects match; "
        f"{c['missing']:,} missing, {c['differs']:,} differing, {c['extra']:,} extra, {c['errors']:,} errors; "
        f"{human_bytes(c['bytes_read'])} re-read in {summary['seconds']:.1f} s"
    )
    print(f"results:   {summary['results']['path']}")


def cmd_inventory(args: argparse.Namespace) -> int:
    _without_pandas()
    from hdh_migrate.locations import parse_location
    from hdh_migrate.runs.migration import take_inventory
    from hdh_migrate.stores import AzureBlobStore, open_store

    src = parse_location(args.source, expect="azure")
    store = open_store(src)
    assert isinstance(store, AzureBlobStore)
    store.check_access(src.prefix)
    stats = take_inventory(store, src, Path(args.out))
    print(f"{stats.objects:,} objects, {human_bytes(stats.bytes)} -> {stats.path} (sha256 {stats.sha256})")
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hdh-migrate",
        description="Move datasets from Azure Blob Storage to an S3-compatible sovereign store, verifiably.",
    )
    p.add_argument("--version", action="version", version=f"hdh-migrate {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("rig", help="local Azurite + SeaweedFS servers on 127.0.0.1 for tests and the demo")
    rs = r.add_subparsers(dest="rig_cmd", required=True, metavar="ACTION")
    up = rs.add_parser("up", help="start both servers (idempotent)")
    up.add_argument("--bucket", action="append", help="also create this bucket on the S3 side (repeatable)")
    up.add_argument("--object-lock", action="store_true", help="create the buckets with Object Lock enabled")
    down = rs.add_parser("down", help="stop both servers")
    down.add_argument("--purge", action="store_true", help="also delete their data")
    env = rs.add_parser("env", help='print the settings to export: eval "$(hdh-migrate rig env)"')
    env.add_argument("--reader", action="store_true", help="use the read-only S3 key (for access tests)")
    rs.add_parser("status", help="show whether the servers run")
    r.set_defaults(func=cmd_rig)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("source", help="azure://CONTAINER/PREFIX")
        sp.add_argument("destination", help="s3://BUCKET/PREFIX (the bucket must exist)")
        sp.add_argument(
            "--workers",
            type=_positive_int,
            default=8,
            help="parallel transfers (default 8): parts of large objects in flight; up to 4 x N "
            "small objects are in flight at once (the memory budget bounds the bytes held)",
        )
        sp.add_argument(
            "--work-dir", help="where the inventory, results and summary go (default $HDH_MIGRATE_HOME/runs/<time>-...)"
        )
        sp.add_argument(
            "--s3-provider",
            help="S3 provider profile (seaweedfs, ovhcloud, outscale, scaleway, "
            "cloudtemple, aws, generic); default $HDH_S3_PROVIDER",
        )
        sp.add_argument("--json", action="store_true", help="print the summary as JSON")
        sp.add_argument("--no-progress", action="store_true", help="no progress line")

    c = sub.add_parser("copy", help="copy every blob under an Azure prefix to an S3 prefix, checked end to end")
    common(c)
    c.add_argument(
        "--part-size",
        type=_size,
        default="8MiB",
        help="multipart part size (default 8MiB; grows automatically to stay under 10,000 parts)",
    )
    c.add_argument("--max-memory", type=_size, default="512MiB", help="budget for data in flight (default 512MiB)")
    c.add_argument("--dry-run", action="store_true", help="list and compare, copy nothing")
    c.add_argument("--bwlimit", type=_size, default=None, help="cap the read bandwidth, per second (e.g. 50MiB)")
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

    v = sub.add_parser("verify", help="re-read the destination and check every object against the source")
    common(v)
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

    inv = sub.add_parser("inventory", help="write the Parquet inventory of an Azure prefix")
    inv.add_argument("source", help="azure://CONTAINER/PREFIX")
    inv.add_argument("--out", required=True, help="the Parquet file to write")
    inv.set_defaults(func=cmd_inventory)

    data.register(sub)
    datasets.register(sub)
    return p


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("azure", "botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args))
    except HdhMigrateError as exc:
        print(f"hdh-migrate: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  what to do: {exc.hint}", file=sys.stderr)
        return EXIT_USAGE if not exc.transient else EXIT_FAILED
    except KeyboardInterrupt:
        print(
            "hdh-migrate: interrupted; unfinished uploads were aborted, re-run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
