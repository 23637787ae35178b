"""Great Expectations suites derived from the published data model, kept as reviewable JSON files.

A suite file (``expectations/NAME.json``) has GX Core 1.x's own suite shape (``name``, ``expectations``
of ``type``/``kwargs``/``meta``, ``meta``), so GX users read it as usual, plus our bookkeeping:

* every expectation derived from the schema carries ``meta.hdh_origin = "schema"`` and a ``meta.why``;
* anything else is hand-tuned and survives regeneration: expectations with ``hdh_origin = "hand"`` (or no
  ``hdh_origin`` at all -- we never drop what we did not write). A hand expectation with the same type
  and column(s) as a derived one *replaces* it, and ``meta.hdh_disabled = true`` on a hand expectation
  switches the derived one off, so a reviewer can loosen a rule without editing generated lines;
* ``meta.hdh`` records the table's Arrow columns, primary key, unique columns and foreign keys, which the
  validator uses to read CSV with the right types and to count distinct keys across all files.

The file has no timestamp or random id, so regenerating an unchanged schema gives an identical file and
a schema change shows up as a readable diff.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdh_migrate.errors import ConfigError
from hdh_migrate.validation.schema import Field, SchemaFile, TableSchema, arrow_type, load_schema

ORIGIN = "hdh_origin"
DISABLED = "hdh_disabled"
#: regular expression of a pseudonymised id of width {n}: SNIIRAM pseudonyms are upper-case alphanumeric
ID_REGEX = r"^[0-9A-Z]{{{n}}}$"
_REGEX_BY_KIND = {
    "year": r"^[0-9]{4}$",
    "yearmonth": r"^[0-9]{4}(?:0[1-9]|1[0-2])$",
    "month": r"^(?:0[1-9]|1[0-2])$",
}
_GX_TYPE = {
    "int64": "int64",
    "double": "float64",
    "bool": "bool",
    "string": "str",
    "date32[day]": "datetime64",
    "timestamp[ms]": "datetime64",
}
DEFAULT_DIR = Path("expectations")


class SuiteError(ConfigError):
    """A suite file is missing, unreadable or not a GX suite."""

    code = "suite"


@dataclass
class SuiteWriteResult:
    path: Path
    table: str
    derived: int
    hand_kept: int
    replaced_by_hand: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "table": self.table,
            "derived": self.derived,
            "hand_kept": self.hand_kept,
            "replaced_by_hand": self.replaced_by_hand,
        }


def gx_type(f: Field) -> str:
    """The dtype name GX's ``expect_column_values_to_be_of_type`` checks on our pandas frames."""
    return _GX_TYPE.get(str(arrow_type(f)), "str")


def _exp(expectation: str, why: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": expectation, "kwargs": kwargs, "meta": {ORIGIN: "schema", "why": why}}


def _number(value: Any, kind: str) -> Any:
    if kind == "integer":
        return int(value)
    return float(value)


def derive_expectations(table: TableSchema) -> list[dict[str, Any]]:
    """The expectations the published model implies for one table, in column order."""
    out = [
        _exp(
            "expect_table_columns_to_match_ordered_list",
            "column set and order of the published model",
            column_list=table.column_names,
        )
    ]
    for f in table.fields:
        out += _column_expectations(table, f)
    if len(table.primary_key) > 1:
        out.append(_exp("expect_compound_columns_to_be_unique", "primary key", column_list=list(table.primary_key)))
    return out


def _column_expectations(table: TableSchema, f: Field) -> list[dict[str, Any]]:
    """One column's type, nullability, uniqueness, allowed values, and bounds or text form."""
    kind, pk = f.kind, table.primary_key
    out = [
        _exp(
            "expect_column_values_to_be_of_type",
            f"type {f.type} stored as {arrow_type(f)}",
            column=f.name,
            type_=gx_type(f),
        )
    ]
    if f.name in pk or f.required:
        out.append(
            _exp(
                "expect_column_values_to_not_be_null",
                "primary key column" if f.name in pk else "required",
                column=f.name,
            )
        )
    if f.unique or pk == (f.name,):
        out.append(
            _exp(
                "expect_column_values_to_be_unique",
                "unique constraint" if f.unique else "primary key",
                column=f.name,
            )
        )
    enum = [v for v in (f.constraints.get("enum") or []) if str(v) not in table.missing_values]
    if enum:
        if kind in ("integer", "number"):
            enum = [_number(v, kind) for v in enum]
        out.append(_exp("expect_column_values_to_be_in_set", "enum constraint", column=f.name, value_set=enum))
    if kind in ("integer", "number"):
        out += _number_bounds(f)
    elif kind in _REGEX_BY_KIND:
        out.append(
            _exp(
                "expect_column_values_to_match_regex",
                f"{kind} written as text",
                column=f.name,
                regex=_REGEX_BY_KIND[kind],
            )
        )
    elif arrow_type(f) == arrow_type(Field("x", "string")):
        out += _text_form(f)
    return out


def _number_bounds(f: Field) -> list[dict[str, Any]]:
    """minimum/maximum, or what an integer's maximum number of digits (``length``) allows."""
    kind = f.kind
    lo, hi = f.minimum, f.maximum
    why = "minimum/maximum constraints"
    if kind == "integer" and f.max_length:
        bound = 10**f.max_length - 1
        if hi is None:
            hi, why = bound, f"at most {f.max_length} digits" + (" and minimum" if lo is not None else "")
        if lo is None:
            lo = -bound
    if lo is None and hi is None:
        return []
    kwargs: dict[str, Any] = {"column": f.name}
    if lo is not None:
        kwargs["min_value"] = _number(lo, kind)
    if hi is not None:
        kwargs["max_value"] = _number(hi, kind)
    return [_exp("expect_column_values_to_be_between", why, **kwargs)]


def _text_form(f: Field) -> list[dict[str, Any]]:
    """A text column's length range, and its pattern (or a pseudonymised id's)."""
    out = []
    if f.max_length is not None or f.min_length is not None:
        kwargs: dict[str, Any] = {"column": f.name}
        if f.min_length is not None:
            kwargs["min_value"] = f.min_length
        if f.max_length is not None:
            kwargs["max_value"] = f.max_length
        out.append(_exp("expect_column_value_lengths_to_be_between", "length / minLength", **kwargs))
    if f.pattern:
        out.append(_exp("expect_column_values_to_match_regex", "pattern constraint", column=f.name, regex=f.pattern))
    elif f.kind == "id":
        out.append(
            _exp(
                "expect_column_values_to_match_regex",
                "pseudonymised id",
                column=f.name,
                regex=ID_REGEX.format(n=f.max_length),
            )
        )
    return out


def expectation_key(exp: dict[str, Any]) -> tuple[str, ...]:
    """What a hand expectation must share with a derived one to replace it: type and column(s)."""
    kw = exp.get("kwargs") or {}
    cols: tuple[str, ...] = ()
    if "column" in kw:
        cols = (str(kw["column"]),)
    elif "column_list" in kw and exp.get("type") != "expect_table_columns_to_match_ordered_list":
        cols = tuple(str(c) for c in kw["column_list"])
    elif "column_A" in kw:
        cols = (str(kw["column_A"]), str(kw.get("column_B")))
    return (str(exp.get("type")), *cols)


def table_meta(table: TableSchema, schema: SchemaFile | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "table": table.name,
        "title": table.title,
        "columns": {f.name: str(arrow_type(f)) for f in table.fields},
        "primary_key": list(table.primary_key),
        "unique": [f.name for f in table.fields if f.unique],
        "foreign_keys": [
            {"fields": list(fk.fields), "resource": fk.resource, "reference_fields": list(fk.reference_fields)}
            for fk in table.foreign_keys
        ],
        "generated_by": "hdh-migrate expectations from-schema",
    }
    if schema is not None:
        meta["schema_file"] = schema.path.name
        meta["schema_sha256"] = schema.sha256
    return meta


def build_suite(
    table: TableSchema, *, schema: SchemaFile | None = None, existing: dict[str, Any] | None = None
) -> tuple[dict[str, Any], SuiteWriteResult]:
    """The suite document for a table, merging the hand-tuned expectations of an existing document."""
    hand = [e for e in (existing or {}).get("expectations", []) if (e.get("meta") or {}).get(ORIGIN) != "schema"]
    for e in hand:
        e.setdefault("meta", {}).setdefault(ORIGIN, "hand")
    hand_keys = {expectation_key(e) for e in hand}
    derived = derive_expectations(table)
    kept = [e for e in derived if expectation_key(e) not in hand_keys]
    doc = {
        "name": table.name,
        "meta": {"hdh": table_meta(table, schema)},
        "notes": (
            f"Derived from the published data model of {table.name}. Expectations with meta.hdh_origin "
            "'schema' are rewritten by 'hdh-migrate expectations from-schema'; add yours with "
            "meta.hdh_origin 'hand' (see docs/VALIDATION.md)."
        ),
        "expectations": kept + hand,
    }
    if existing and isinstance(existing.get("meta"), dict):
        # keep any meta a reviewer added, refresh ours
        extra = {k: v for k, v in existing["meta"].items() if k not in ("hdh", "great_expectations_version")}
        doc["meta"] = {**extra, **doc["meta"]}
    result = SuiteWriteResult(Path(), table.name, len(kept), len(hand), len(derived) - len(kept))
    return doc, result


def read_suite_document(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(
            f"suite file {p} does not exist",
            hint="derive it with: hdh-migrate expectations from-schema SCHEMA.json --table NAME",
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"cannot read the suite file {p}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise SuiteError(f"{p} is not a Great Expectations suite (no 'expectations' list)")
    return doc


def write_suite_from_schema(
    schema: SchemaFile | str | Path | None, table: str, out: str | Path | None = None
) -> SuiteWriteResult:
    """Derive the suite of one table and write it (default ``expectations/NAME.json``), keeping hand edits."""
    sf = schema if isinstance(schema, SchemaFile) else load_schema(schema)
    ts = sf.table(table)
    path = Path(out) if out else DEFAULT_DIR / f"{table}.json"
    existing = read_suite_document(path) if path.exists() else None
    doc, result = build_suite(ts, schema=sf, existing=existing)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    result.path = path
    return result


def active_expectations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The expectations to run: disabled hand entries are only there to switch a derived one off."""
    return [e for e in doc["expectations"] if not (e.get("meta") or {}).get(DISABLED)]
