"""``hdh-migrate seed | expectations from-schema | validate``: the dataset-level commands.

Heavy imports (GX, pandas) happen inside the handlers, so ``hdh-migrate copy`` never pays for them.
"""

from __future__ import annotations

import argparse
import json
import sys

from hdh_migrate.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, count


def cmd_seed(args: argparse.Namespace) -> int:
    from hdh_migrate.dev.seed import seed_table
    from hdh_migrate.validation.schema import load_schema

    sf = load_schema(args.schema)
    results = []
    for name in args.table:
        r = seed_table(
            args.destination,
            sf.table(name),
            args.rows,
            schemas=sf,
            seed=args.seed,
            universe=args.universe,
            rows_per_file=args.rows_per_file,
            row_group_size=args.row_group_size,
            fmt=args.format,
        )
        results.append(r.to_dict())
        if not args.json:
            print(
                f"seeded {r.table}: {r.rows} rows in {len(r.files)} {r.format} file(s), {r.bytes} bytes under {r.url}"
            )
    if args.json:
        print(json.dumps(results, indent=2))
    return EXIT_OK


def cmd_expectations(args: argparse.Namespace) -> int:
    from hdh_migrate.validation.expectations import write_suite_from_schema
    from hdh_migrate.validation.schema import load_schema

    sf = load_schema(args.schema)
    names = sorted(sf.tables) if args.all else args.table
    if not names:
        print("hdh-migrate: error: give --table NAME (repeatable) or --all", file=sys.stderr)
        return EXIT_USAGE
    if args.out and len(names) > 1:
        print("hdh-migrate: error: --out names one file; use --out-dir with several tables", file=sys.stderr)
        return EXIT_USAGE
    for name in names:
        out = args.out or (f"{args.out_dir.rstrip('/')}/{name}.json" if args.out_dir else None)
        r = write_suite_from_schema(sf, name, out)
        print(
            f"{r.path}: {r.derived} derived expectation(s), {r.hand_kept} hand-tuned kept"
            + (f", {r.replaced_by_hand} derived replaced by hand-tuned ones" if r.replaced_by_hand else "")
        )
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from hdh_migrate.validation.table import ValidationFailedError, format_report, validate_table

    try:
        result = validate_table(
            args.table,
            args.suite,
            args.source,
            args.destination,
            data_docs_dir=None if args.no_data_docs else args.data_docs,
            batch_rows=args.batch_rows,
            jobs=args.jobs,
        )
    except ValidationFailedError as exc:
        result = exc.result
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return EXIT_OK if result["success"] else EXIT_FAILED


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``seed``, ``expectations from-schema`` and ``validate`` to the ``hdh-migrate`` parser."""
    s = subparsers.add_parser("seed", help="write synthetic SNDS-shaped tables (Parquet or CSV) to a location")
    s.add_argument("destination", help="azure://CONTAINER/PREFIX (or s3://BUCKET/PREFIX); tables go under PREFIX/NAME/")
    s.add_argument(
        "--schema", default=None, help="Table Schema file (default: the SNDS schemas shipped with hdh-migrate)"
    )
    s.add_argument("--table", action="append", required=True, help="table to generate (repeatable)")
    s.add_argument("--rows", type=count, required=True, help="rows per table")
    s.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data; default 0)")
    s.add_argument(
        "--universe",
        type=count,
        default=None,
        help="beneficiaries the tables may reference (default: --rows); seed IR_BEN_R with at least "
        "that many rows for the foreign keys to hold",
    )
    s.add_argument("--rows-per-file", type=count, default=1_000_000, help="rows per part file (default 1000000)")
    s.add_argument("--row-group-size", type=count, default=100_000, help="rows per Parquet row group (default 100000)")
    s.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="file format (default parquet)")
    s.add_argument("--json", action="store_true", help="print what was written as JSON")
    s.set_defaults(func=cmd_seed)

    e = subparsers.add_parser("expectations", help="Great Expectations suites derived from the data model")
    es = e.add_subparsers(dest="expectations_cmd", required=True, metavar="ACTION")
    fs = es.add_parser("from-schema", help="derive a table's suite from a Table Schema (hand-tuned entries are kept)")
    fs.add_argument("schema", help="Table Schema file, e.g. hdh_migrate/data/snds_schemas.json")
    fs.add_argument("--table", action="append", default=[], help="table (repeatable)")
    fs.add_argument("--all", action="store_true", help="every table of the file")
    fs.add_argument("--out", help="suite file to write (default expectations/NAME.json)")
    fs.add_argument("--out-dir", help="folder for the suites when several tables are given (default expectations/)")
    fs.set_defaults(func=cmd_expectations)

    v = subparsers.add_parser(
        "validate", help="run a table's suite on the source and the destination copies and compare them"
    )
    v.add_argument("source", help="azure://CONTAINER/PREFIX (the table is read under PREFIX/NAME/)")
    v.add_argument("destination", help="s3://BUCKET/PREFIX (the table is read under PREFIX/NAME/)")
    v.add_argument("--table", required=True, help="table name")
    v.add_argument("--suite", required=True, help="suite file, e.g. expectations/NAME.json")
    v.add_argument("--data-docs", default="data_docs", help="folder for the GX Data Docs (default ./data_docs)")
    v.add_argument("--no-data-docs", action="store_true", help="do not build Data Docs")
    v.add_argument(
        "--batch-rows",
        type=count,
        default=250_000,
        help="rows per GX batch (default 250000; whole row groups, filled across files under 32 MiB)",
    )
    v.add_argument(
        "--jobs",
        type=count,
        default=1,
        help="processes per side: a table's files are split between them, at least 32 MiB each (default 1; "
        "each costs GX's import, ~6 s, and a batch of memory: for tables of several files and millions of rows)",
    )
    v.add_argument("--json", action="store_true", help="print the full result as JSON")
    v.add_argument("--json-out", help="also write the full result as JSON to this file")
    v.set_defaults(func=cmd_validate)
