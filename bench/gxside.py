"""One side of a table's validation, run one way, for bench/validation (a subprocess per measurement).

``python -m bench.gxside URL TABLE grouped|whole`` validates the table under URL with its suite from
expectations/, either as ``hdh-migrate validate`` does (the suite in column groups, hdh_migrate/validation/gxplan.py)
or as one GX validation of the whole DataFrame per batch, a batch per file at most (GX's own way, and
hdh-migrate's before). It
prints one JSON line: rows, batches, seconds in the validation itself (GX's import and context excluded),
whether the suite passed, and a digest of every expectation's outcome, so the two ways can be checked to
agree.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from hdh_migrate.validation.gxrunner import GxRunner
from hdh_migrate.validation.sides import validate_side
from hdh_migrate.validation.table import load_suite

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    url, table, mode = sys.argv[1:4]
    doc = load_suite(ROOT / "expectations" / f"{table}.json")
    runner = GxRunner(table, doc, None, grouped=mode == "grouped")
    start = time.perf_counter()
    # GX's way batches a table file by file (a batch per file, as its file data assets do); hdh-migrate's
    # fills batches across files smaller than a group (validation.files.file_groups)
    side = validate_side("source", table, doc, url, runner=runner, group_bytes=None if mode == "grouped" else 1)
    seconds = time.perf_counter() - start
    counts = ("element_count", "unexpected_count", "missing_count")
    outcome = [
        [r.expectation_config.type, r.success, {k: (r.result or {}).get(k) for k in counts}]
        for r in side.gx_result.results
    ]
    print(json.dumps({
        "rows": side.metrics["row_count"],
        "batches": side.batches,
        "validate_s": round(seconds, 3),
        "success": side.success,
        "failed": len(side.failed_expectations),
        "outcome_sha256": hashlib.sha256(json.dumps(outcome, default=str).encode()).hexdigest(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
