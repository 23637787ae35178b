"""The report's per-object evidence: one row per object of the verified inventory.

``evidence.parquet`` and ``evidence.csv``: the key, its size, the source hash and how it was obtained, the
destination hash and how it was obtained, whether they match, and what the last copy of it did. Built from
the verification check's evidence files (the verify results, the copy results), so the rows say what the
runs saw, not what the report assumes. A delta sync re-verifies what it changed: the latest row of each
object wins (files in order, rows in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hdh_migrate.audit.state import Check
from hdh_migrate.transfer.checksums import file_sha256

SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("name", pa.string()),
        ("size", pa.int64()),
        ("algorithm", pa.string()),
        ("source_sha256", pa.string()),
        ("source_sha256_how", pa.string()),
        ("dest_sha256", pa.string()),
        ("dest_sha256_how", pa.string()),
        ("verify_status", pa.string()),
        ("match", pa.bool_()),
        ("last_copy_status", pa.string()),
        ("copy_attempts", pa.int32()),
    ]
)
VERIFY_COLUMNS = ["name", "key", "status", "algorithm", "source_sha256", "dest_sha256"]
COPY_COLUMNS = ["name", "key", "size", "status", "source_sha256", "attempts", "error_code"]
MAX_ERROR_EXAMPLES = 20


@dataclass
class EvidenceStats:
    """What the report's counts and exceptions sections say, tallied while the rows are built."""

    objects: int = 0
    matched: int = 0
    mismatched: int = 0
    not_verified: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    failed: int = 0
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    error_examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class LastCopy:
    status: str
    attempts: int
    source_sha256: str | None


def build_evidence(check: Check | None, out_dir: Path) -> dict[str, Any]:
    """Write evidence.parquet and evidence.csv; their hashes and the tallies, for the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = EvidenceStats()
    inventory = (check.details.get("inventory") if check else None) or ""
    table = _evidence(check, stats) if check and Path(inventory).exists() else SCHEMA.empty_table()
    pq_path, csv_path = out_dir / "evidence.parquet", out_dir / "evidence.csv"
    pq.write_table(table, pq_path, compression="zstd")
    pacsv.write_csv(table, csv_path)
    return vars(stats) | {
        "parquet": {"name": pq_path.name, "sha256": file_sha256(str(pq_path))},
        "csv": {"name": csv_path.name, "sha256": file_sha256(str(csv_path))},
        "inventory_sha256": check.details.get("inventory_sha256") if check else None,
    }


def _evidence(check: Check, stats: EvidenceStats) -> pa.Table:
    depth = check.details.get("depth") or "full"
    inventory = pq.read_table(check.details["inventory"], columns=["name", "size"])
    table = _with_verification(inventory, list(check.details.get("evidence") or []))
    copies = _last_copies(list(check.details.get("copy_results") or []), stats)
    cols = {n: table.column(n).to_pylist() for n in table.column_names}
    out: dict[str, list[Any]] = {f.name: [] for f in SCHEMA}
    for i in range(len(cols["name"])):
        row = {n: cols[n][i] for n in cols}
        _add_row(out, row, copies.get(row["name"]), depth, stats)
    return pa.Table.from_pydict(out, schema=SCHEMA).sort_by("key")


def _with_verification(inventory: pa.Table, files: list[str]) -> pa.Table:
    """The inventory, each object with the latest verification row of it (nulls when never verified)."""
    verified = _read(files, VERIFY_COLUMNS)
    if verified is None:
        for name in VERIFY_COLUMNS[1:]:
            inventory = inventory.append_column(name, pa.nulls(inventory.num_rows, pa.string()))
        return inventory
    rows = verified.filter(pc.not_equal(verified.column("name"), ""))  # "extra" rows have no source name
    return inventory.join(_last_per_name(rows).drop_columns(["_order"]), keys="name", join_type="left outer")


def _last_copies(files: list[str], stats: EvidenceStats) -> dict[str, LastCopy]:
    """The latest copy of each object; the failures and retries of every copy, tallied."""
    copied = _read(files, COPY_COLUMNS)
    if copied is None:
        return {}
    rows = copied.to_pydict()
    stats.retries = int(sum(max(0, (a or 1) - 1) for a in rows["attempts"]))
    for i, name in enumerate(rows["name"]):
        code = rows["error_code"][i]
        if code and rows["status"][i] in ("failed", "rejected"):
            stats.errors[code] = stats.errors.get(code, 0) + 1
            if len(stats.error_examples) < MAX_ERROR_EXAMPLES:
                example = {"key": rows["key"][i] or name, "code": code, "attempts": rows["attempts"][i]}
                stats.error_examples.append(example | {"status": rows["status"][i]})
    last = _last_per_name(copied).to_pydict()
    return {
        n: LastCopy(last["status"][i], last["attempts"][i] or 0, last["source_sha256"][i])
        for i, n in enumerate(last["name"])
    }


def _add_row(
    out: dict[str, list[Any]], row: dict[str, Any], copy: LastCopy | None, depth: str, stats: EvidenceStats
) -> None:
    status, dst_h = row["status"], row["dest_sha256"]
    src_h, src_how = _source_hash(row["source_sha256"], copy, depth)
    match = status == "ok" and (dst_h is None or dst_h == src_h)
    values = {
        "key": row["key"] or row["name"],
        "name": row["name"],
        "size": row["size"],
        "algorithm": row["algorithm"] or "sha256",
        "source_sha256": src_h,
        "source_sha256_how": src_how,
        "dest_sha256": dst_h,
        "dest_sha256_how": _destination_how(dst_h, status, depth),
        "verify_status": status or "not verified",
        "match": bool(match),
        "last_copy_status": copy.status if copy else None,
        "copy_attempts": int(copy.attempts) if copy else None,
    }
    for name, value in values.items():
        out[name].append(value)
    _tally(stats, match, status, copy, int(row["size"] or 0))


def _source_hash(recorded: str | None, copy: LastCopy | None, depth: str) -> tuple[str | None, str]:
    """The source's SHA-256 and how it was obtained, best proof first."""
    if copy and copy.status == "copied" and copy.source_sha256:
        how = "computed while copying from the source bytes"
        if recorded and recorded != copy.source_sha256:
            how += f" (the destination records {recorded})"
        return copy.source_sha256, how
    if depth == "both" and recorded:
        return recorded, "re-read from the source by verify (both)"
    if recorded:
        return recorded, "recorded on the destination object by the copier, computed from the source bytes"
    return None, "not available"


def _destination_how(dst_h: str | None, status: str | None, depth: str) -> str:
    if dst_h:
        return f"re-read from the destination by verify ({depth})"
    if status == "ok":
        return "not re-read (quick verification: recorded hash and ETag checked)"
    return "not available"


def _tally(stats: EvidenceStats, match: bool, status: str | None, copy: LastCopy | None, size: int) -> None:
    stats.objects += 1
    if match:
        stats.matched += 1
    elif status is None:
        stats.not_verified += 1
    else:
        stats.mismatched += 1
    if copy is None:
        return
    if copy.status == "copied":
        stats.copied += 1
        stats.copied_bytes += size
    elif copy.status == "skipped":
        stats.skipped += 1
    elif copy.status in ("failed", "rejected"):
        stats.failed += 1


def _read(paths: list[str], columns: list[str]) -> pa.Table | None:
    """The rows of several results files, each tagged with its order (file, then row)."""
    tables = []
    for i, p in enumerate(paths):
        if p and Path(p).exists():
            t = pq.read_table(p, columns=columns)
            tables.append(t.append_column("_order", pa.array([i * 10**9 + j for j in range(t.num_rows)], pa.int64())))
    return pa.concat_tables(tables) if tables else None


def _last_per_name(t: pa.Table) -> pa.Table:
    """The latest row of each name (files in order, rows in order): a delta re-verifies what it changed."""
    t = t.sort_by([("name", "ascending"), ("_order", "ascending")])
    names = t.column("name").to_pylist()
    keep = [i for i in range(len(names)) if i == len(names) - 1 or names[i + 1] != names[i]]
    return t.take(pa.array(keep, pa.int64()))


__all__ = ["SCHEMA", "EvidenceStats", "build_evidence"]
