"""A table's validation result in words: the one-line failure message and the plain-text report.

Both name tables, sides, expectations, columns and metrics, with counts and fingerprints: never a value.
"""

from __future__ import annotations

import json
from typing import Any


def failure_message(result: dict[str, Any], limit: int = 8) -> str:
    """One line naming the table, the side(s) and what failed (counts and names only, never values)."""
    parts = []
    for side in ("source", "destination"):
        s = result[side]
        if not s["success"]:
            names = [
                f"{f['expectation']}({f.get('column') or '+'.join(f.get('columns', [])) or 'table'})"
                for f in s["failed_expectations"]
            ]
            more = f" and {len(names) - limit} more" if len(names) > limit else ""
            parts.append(f"{side} {s['url']} failed {len(names)} expectation(s): {', '.join(names[:limit])}{more}")
    diffs = result["comparison"]["differences"]
    if diffs:
        names = [d["metric"] + (f"({d['column']})" if d.get("column") else "") for d in diffs]
        more = f" and {len(names) - limit} more" if len(names) > limit else ""
        parts.append(f"source and destination differ in {len(diffs)} metric(s): {', '.join(names[:limit])}{more}")
    return f"{result['table']}: validation failed -- " + "; ".join(parts)


def format_report(result: dict[str, Any]) -> str:
    """The comparison as a plain-text table for the terminal and the audit log."""
    src, dst = result["source"], result["destination"]
    lines = [f"table {result['table']}  suite {result['suite']}"]
    for label, s in (("source", src), ("destination", dst)):
        n = s["expectations"]["evaluated"]
        lines.append(
            f"  {label:<12} {s['url']}  files {s['files']}  rows {s['metrics']['row_count']}  "
            f"expectations {n - s['expectations']['failed']}/{n} {'PASS' if s['success'] else 'FAIL'}"
        )
    lines.append(f"  fingerprint  source {src['metrics']['fingerprint']}  destination {dst['metrics']['fingerprint']}")
    for side, s in (("source", src), ("destination", dst)):
        lines += [_failed_line(side, f) for f in s["failed_expectations"]]
    lines += _difference_lines(result["comparison"]["differences"])
    if result.get("data_docs"):
        lines.append(f"  data docs    {result['data_docs']}")
    lines.append("RESULT: " + ("PASS -- both sides pass and match" if result["success"] else "FAIL -- cutover blocked"))
    return "\n".join(lines)


def _failed_line(side: str, f: dict[str, Any]) -> str:
    target = f.get("column") or "+".join(f.get("columns", [])) or "(table)"
    return (
        f"  FAILED {side:<11} {f['expectation']} on {target}: {f['unexpected_count']} unexpected"
        + (f" (observed {', '.join(f['observed'])})" if f.get("observed") else "")
        + (" [across files]" if f.get("scope") == "table" else "")
    )


def _difference_lines(diffs: list[dict[str, Any]]) -> list[str]:
    if not diffs:
        return ["  all metrics equal on both sides"]
    lines = [f"  {len(diffs)} metric(s) differ:", f"    {'metric':<16} {'column':<24} {'source':<24} destination"]
    for d in diffs:
        source, destination = _short(d["source"]), _short(d["destination"])
        lines.append(f"    {d['metric']:<16} {d['column'] or '-':<24} {source:<24} {destination}")
    return lines


def _short(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, list | dict) else str(v)
    return s if len(s) <= 60 else s[:57] + "..."
