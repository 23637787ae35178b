"""Table Schema files (frictionless JSON with the HDH extensions) loaded into small typed objects.

The published SNDS data model is the single source of truth for three things that must agree: the
synthetic data the generator writes, the Great Expectations suites derived from it, and the Arrow types
the validator expects to read back. Keeping the field -> Arrow type mapping here means the three can never
drift apart. A file holds either many tables (``{"tables": {NAME: {...}}}``, the shape of
``snds_schemas.json``) or one plain Table Schema (``{"fields": [...]}``, named by its ``name`` or the file
stem), so a table we have never seen works the same way as the four core ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from hdh_migrate.errors import ConfigError

#: the schemas shipped with the package (a copy of ../shared/reference/snds_schemas.json)
DEFAULT_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "snds_schemas.json"

# Table Schema types we map natively; anything else (object, array, any, geopoint...) is kept as text.
_KNOWN_TYPES = {"string", "integer", "number", "boolean", "date", "datetime", "year", "yearmonth", "time"}


class SchemaError(ConfigError):
    """The schema file is unreadable, malformed, or does not hold the table asked for."""

    code = "schema"


@dataclass(frozen=True)
class Field:
    """One column of the published model, with the constraints the suites and the generator use."""

    name: str
    type: str
    length: str | None = None
    type_oracle: str | None = None
    description: str = ""
    nomenclature: str | None = None
    constraints: dict[str, Any] = field(default_factory=dict)

    @property
    def max_length(self) -> int | None:
        """Characters (strings) or digits (integers) allowed; ``"4,2"`` (NUMBER(p,s)) gives 4."""
        if not self.length:
            return None
        head = str(self.length).split(",")[0].strip()
        return int(head) if head.isdigit() and int(head) > 0 else None

    @property
    def scale(self) -> int | None:
        """Decimal places of a ``number`` whose length is ``"p,s"``."""
        parts = str(self.length or "").split(",")
        return int(parts[1]) if len(parts) == 2 and parts[1].strip().isdigit() else None

    @property
    def min_length(self) -> int | None:
        v = self.constraints.get("minLength")
        return int(v) if v is not None else None

    @property
    def minimum(self) -> float | int | None:
        return self.constraints.get("minimum")

    @property
    def maximum(self) -> float | int | None:
        return self.constraints.get("maximum")

    @property
    def unique(self) -> bool:
        return bool(self.constraints.get("unique"))

    @property
    def required(self) -> bool:
        return bool(self.constraints.get("required"))

    @property
    def pattern(self) -> str | None:
        return self.constraints.get("pattern")

    @property
    def kind(self) -> str:
        """What the column holds, as the generator and the suites see it.

        ``type`` alone is not enough: the model types month columns (``BEN_NAI_MOI``: two characters,
        Oracle type string) as ``date``, and ``year``/``yearmonth`` are stored as text in the SNDS.
        Kinds: id, code, integer, number, boolean, date, datetime, year, yearmonth, month, text.
        """
        t = self.type if self.type in _KNOWN_TYPES else "string"
        if t == "date" and (self.type_oracle == "string") and (self.max_length or 8) <= 2:
            return "month"
        if t in ("integer", "number", "boolean", "date", "datetime", "year", "yearmonth"):
            return t
        if t == "time":
            return "text"
        if is_pseudonymised_id(self):
            return "id"
        return "code" if self.max_length is not None else "text"


@dataclass(frozen=True)
class ForeignKey:
    fields: tuple[str, ...]
    resource: str
    reference_fields: tuple[str, ...]


@dataclass(frozen=True)
class TableSchema:
    name: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    missing_values: tuple[str, ...] = ("",)
    title: str = ""

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise SchemaError(f"table {self.name} has no column {name!r}")


@dataclass(frozen=True)
class SchemaFile:
    path: Path
    tables: dict[str, TableSchema]
    sha256: str
    source: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> TableSchema:
        try:
            return self.tables[name]
        except KeyError:
            raise SchemaError(
                f"{self.path.name} has no table {name!r}",
                hint=f"tables in this file: {', '.join(sorted(self.tables)) or 'none'}",
            ) from None


def is_pseudonymised_id(f: Field) -> bool:
    """A fixed-length identifier of 17+ characters (BEN_NIR_PSA, NIR_ANO_17, NIR_ANO_MAM...).

    The model marks pseudonymised ids only by shape: string, ``minLength`` equal to ``length`` and at
    least 17 characters (the SNIIRAM pseudonym width). Those values must never reach a log or a report.
    """
    if f.type != "string" or f.max_length is None:
        return False
    return f.min_length == f.max_length and f.max_length >= 17


def arrow_type(f: Field) -> pa.DataType:
    """The Parquet/Arrow type a column is stored as (the generator writes it, the validator expects it)."""
    kind = f.kind
    if kind == "integer":
        return pa.int64()
    if kind == "number":
        return pa.float64()
    if kind == "boolean":
        return pa.bool_()
    if kind == "date":
        return pa.date32()
    if kind == "datetime":
        return pa.timestamp("ms")
    return pa.string()


def arrow_schema(table: TableSchema) -> pa.Schema:
    return pa.schema([pa.field(f.name, arrow_type(f), nullable=True) for f in table.fields])


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _parse_table(name: str, doc: dict[str, Any], where: str) -> TableSchema:
    raw_fields = doc.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise SchemaError(f"table {name!r} in {where} has no 'fields' list")
    fields: list[Field] = []
    seen: set[str] = set()
    for i, rf in enumerate(raw_fields):
        if not isinstance(rf, dict) or not isinstance(rf.get("name"), str) or not rf["name"]:
            raise SchemaError(f"field #{i} of table {name!r} in {where} has no name")
        if rf["name"] in seen:
            raise SchemaError(f"column {rf['name']!r} appears twice in table {name!r} ({where})")
        seen.add(rf["name"])
        constraints = rf.get("constraints") or {}
        if not isinstance(constraints, dict):
            raise SchemaError(f"constraints of {name}.{rf['name']} in {where} must be an object")
        length = rf.get("length")
        fields.append(
            Field(
                name=rf["name"],
                type=str(rf.get("type") or "string"),
                length=str(length) if length not in (None, "") else None,
                type_oracle=rf.get("type_oracle"),
                description=str(rf.get("description") or ""),
                nomenclature=rf.get("nomenclature") or None,
                constraints=dict(constraints),
            )
        )
    pk = _as_tuple(doc.get("primaryKey"))
    for col in pk:
        if col not in seen:
            raise SchemaError(f"primary key column {col!r} of table {name!r} is not a field ({where})")
    fks: list[ForeignKey] = []
    for fk in doc.get("foreignKeys") or []:
        ref = fk.get("reference") or {}
        cols = _as_tuple(fk.get("fields"))
        missing = [c for c in cols if c not in seen]
        if missing:
            raise SchemaError(f"foreign key column(s) {missing} of table {name!r} are not fields ({where})")
        fks.append(ForeignKey(cols, str(ref.get("resource") or ""), _as_tuple(ref.get("fields"))))
    missing_values = tuple(str(v) for v in (doc.get("missingValues") or [""]))
    return TableSchema(
        name=name,
        fields=tuple(fields),
        primary_key=pk,
        foreign_keys=tuple(fks),
        missing_values=missing_values,
        title=str(doc.get("title") or ""),
    )


def load_schema(path: str | Path | None = None) -> SchemaFile:
    """Read and check a schema file (default: the SNDS schemas shipped with the package)."""
    p = Path(path) if path else DEFAULT_SCHEMA
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SchemaError(f"cannot read the schema file {p}: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{p} is not valid JSON (line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise SchemaError(f"{p} must hold a JSON object")
    tables: dict[str, TableSchema] = {}
    if isinstance(doc.get("tables"), dict):
        for name, tdoc in doc["tables"].items():
            if not isinstance(tdoc, dict):
                raise SchemaError(f"table {name!r} in {p} must be an object")
            tables[name] = _parse_table(name, tdoc, str(p))
    elif isinstance(doc.get("fields"), list):
        name = str(doc.get("name") or p.stem)
        tables[name] = _parse_table(name, doc, str(p))
    else:
        raise SchemaError(
            f"{p} is neither a schema collection nor a Table Schema",
            hint='expected {"tables": {NAME: {"fields": [...]}}} or {"fields": [...]}',
        )
    return SchemaFile(
        path=p,
        tables=tables,
        sha256=hashlib.sha256(raw).hexdigest(),
        source=dict(doc.get("_source") or {}),
    )


def get_table(name: str, schema: SchemaFile | str | Path | None = None) -> TableSchema:
    sf = schema if isinstance(schema, SchemaFile) else load_schema(schema)
    return sf.table(name)
