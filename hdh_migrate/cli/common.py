"""What every verb of the command line shares: exit codes, argument types, printing."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hdh_migrate.errors import HdhMigrateError
from hdh_migrate.sizes import parse_size

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def size(text: str) -> int:
    try:
        return parse_size(text)
    except HdhMigrateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def count(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="state database URL (default $HDH_MIGRATE_DB_URL, else SQLite under $HDH_MIGRATE_HOME)")


def errors_to_stderr(errors: list[dict[str, str]], limit: int = 20) -> None:
    for e in errors[:limit]:
        print(f"  FAILED  {e.get('name') or e.get('key')}: {e.get('message') or e.get('detail')}", file=sys.stderr)
    if len(errors) > limit:
        print(f"  ... and {len(errors) - limit} more (see the results file)", file=sys.stderr)
