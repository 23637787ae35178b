"""bench/validation: a table's suite validated as hdh-migrate runs it, against GX's whole-DataFrame way.

Why a benchmark of its own: in the demo's migration DAG the copy of 280 MiB took 17 s and the Great
Expectations validation of the same tables 400 s, and a real ER_PRS_F holds billions of rows. The peer is
GX itself, run the way its pandas assets run: one validation of the whole batch, every column, a batch per
file at most (hdh-migrate's own way until column groups, hdh_migrate/validation/gxplan.py, and batches filled across
small files, validation.files.file_groups). Both read the same Parquet files from Azurite with the same reader,
compute the same side metrics, and must reach the same outcome for every expectation (checked: a digest
of the outcomes). Each way runs in its own process, alternated, ``--reps`` times; the table prints medians.

    bench/validation [--table ER_PRS_F] [--rows 1000000] [--reps 3] [--rows-per-file 500000]

Writes bench/results/validation-latest.json, or validation-small-files-latest.json with another
``--rows-per-file`` (e.g. 25000: a table of small files).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import UTC, datetime
from typing import Any

from hdh_migrate.dev import rig
from hdh_migrate.locations import parse_location
from hdh_migrate.stores import open_store

from . import measure, tools
from .run import RESULTS, log

CONTAINER = "hdh-bench-validation"
WAYS = {"hdh": "grouped", "gx_whole_frame": "whole"}
ROWS_PER_FILE = 500_000


def seeded(env: dict[str, str], table: str, rows: int, rows_per_file: int) -> str:
    """The table's URL in Azurite, seeded once (same seed, same data) and kept for later runs."""
    url = f"azure://{CONTAINER}/r{rows}" + ("" if rows_per_file == ROWS_PER_FILE else f"-f{rows_per_file}")
    loc = parse_location(f"{url}/{table}/")
    store = open_store(loc)
    store.create_container()  # idempotent
    if not any(True for _ in store.list(loc.prefix)):
        log(f"seeding {rows:,} rows of {table} into {url}/{table}/ (untimed)")
        r = measure.run("seed", [tools.HDH, "seed", "--table", table, "--rows", str(rows), "--rows-per-file",
                                 str(rows_per_file), url], env=env)
        if r.rc != 0:
            raise SystemExit(f"seeding failed: {r.stderr.strip()[-500:]}")
    return url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/validation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default="ER_PRS_F", help="table (suite expectations/TABLE.json; default ER_PRS_F)")
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows to seed and validate (default 1,000,000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each way, alternated (default 3)")
    ap.add_argument("--rows-per-file", type=int, default=ROWS_PER_FILE,
                    help=f"rows per seeded Parquet file (default {ROWS_PER_FILE:,}; e.g. 25000 for a table of "
                         "small files, where hdh-migrate fills batches across files)")
    args = ap.parse_args(argv)

    rig.up(quiet=True)
    os.environ.update(rig.env())  # the stores of this process (the seeding check) and of the measured ones
    env = tools.Env.python_env(dict(os.environ))
    url = seeded(env, args.table, args.rows, args.rows_per_file)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in WAYS}
    measure.run("warm-up", [tools.PY, "-m", "bench.gxside", url, args.table, "grouped"], env=env)  # bytecode
    for rep in range(args.reps):
        order = list(WAYS) if rep % 2 == 0 else list(reversed(WAYS))
        for way in order:
            r = measure.run(way, [tools.PY, "-m", "bench.gxside", url, args.table, WAYS[way]], env=env)
            if r.rc != 0:
                raise SystemExit(f"{way} failed: {r.stderr.strip()[-800:]}")
            res = json.loads(r.stdout.strip().splitlines()[-1])
            res |= {"wall_s": round(r.wall_s, 2), "cpu_s": round(r.cpu_s, 2), "rss_mib": round(r.rss_mib, 1)}
            runs[way].append(res)
            log(f"  rep {rep + 1} {way:15} {res['validate_s']:7.1f} s validating, {r.wall_s:6.1f} s wall, "
                f"{r.cpu_s:6.1f} CPU-s, {r.rss_mib:6.0f} MiB peak")
    digests = {res["outcome_sha256"] for way in runs for res in runs[way]}
    if len(digests) != 1:
        raise SystemExit(f"the two ways disagree on some expectation's outcome: {sorted(digests)}")

    def med(way: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[way]), 2)

    rows = runs["hdh"][0]["rows"]
    summary: dict[str, Any] = {
        "table": args.table,
        "rows": rows,
        "rows_per_file": args.rows_per_file,
        "batches": {way: runs[way][0]["batches"] for way in WAYS},
        "repetitions": args.reps,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "same_outcome": True,
        "success": runs["hdh"][0]["success"],
    }
    for way in WAYS:
        summary[way] = {k: med(way, k) for k in ("validate_s", "wall_s", "cpu_s", "rss_mib")}
        summary[way]["rows_per_s"] = round(rows / summary[way]["validate_s"])
    hdh, gx = summary["hdh"], summary["gx_whole_frame"]
    summary["ratios"] = {
        "hdh_vs_gx_whole_frame_rows_per_s": round(hdh["rows_per_s"] / gx["rows_per_s"], 2),
        "hdh_vs_gx_whole_frame_peak_rss": round(hdh["rss_mib"] / gx["rss_mib"], 2),
    }
    print(f"\n{args.table}: {rows:,} rows in files of {args.rows_per_file:,}, medians of {args.reps}; the same "
          "outcome for every expectation both ways\n")
    print(f"{'way':18} {'batches':>7} {'validating':>11} {'rows/s':>9} {'wall':>8} {'CPU-s':>7} {'peak RSS':>9}")
    for way in WAYS:
        s = summary[way]
        print(f"{way:18} {summary['batches'][way]:7} {s['validate_s']:9.1f} s {s['rows_per_s']:9,} "
              f"{s['wall_s']:6.1f} s {s['cpu_s']:7.1f} {s['rss_mib']:5.0f} MiB")
    print(f"\nhdh-migrate / GX whole frame: {summary['ratios']['hdh_vs_gx_whole_frame_rows_per_s']} x the rows/s, "
          f"{summary['ratios']['hdh_vs_gx_whole_frame_peak_rss']} x the peak RSS")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("validation-latest.json" if args.rows_per_file == ROWS_PER_FILE
                     else "validation-small-files-latest.json")
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
