"""The ``hdh-migrate`` parser and entry point.

Exit codes: 0 success; 1 the run went through and found the data not right (objects failed or differ, a
table failed its suite, a cutover was refused, a signature or the ledger does not verify) or a transient
error outlived its retries; 2 bad input (arguments, credentials, missing container or bucket); 130
interrupted. Errors print what happened and what to do.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from hdh_migrate import __version__
from hdh_migrate.cli import data, datasets, rig, transfer
from hdh_migrate.cli.common import EXIT_INTERRUPTED
from hdh_migrate.errors import HdhMigrateError

#: SDK loggers kept at WARNING whatever -v says: their DEBUG lines carry request headers
NOISY_LOGGERS = ("azure", "botocore", "boto3", "urllib3", "s3transfer")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hdh-migrate",
        description="Move datasets from Azure Blob Storage to an S3-compatible sovereign store, verifiably.",
    )
    p.add_argument("--version", action="version", version=f"hdh-migrate {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (rig, transfer, data, datasets):
        module.register(sub)
    return p


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    _logging(args.verbose)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args))
    except HdhMigrateError as exc:
        print(f"hdh-migrate: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  what to do: {exc.hint}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(
            "hdh-migrate: interrupted; unfinished uploads were aborted, re-run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
