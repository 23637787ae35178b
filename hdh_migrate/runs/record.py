"""The run record: what one run did and decided, as its ``summary.json`` says it.

One record type for every run (``copy``, ``verify``, ``migrate`` -- the DAG and its command-line twin --
and ``delta_sync``), written by one function (``RunRecord.write``) and read back by one
(``RunRecord.load``): the state database, the cutover preflight and the audit report read these fields
and nothing else. A run's verdict is one property (``ok``), computed here from the record's sections, so
no two readers can decide it differently.

The header (who, what, where, with which options) is written as ``run.json`` when the run starts, so that
the tasks of a DAG run, each in its own process, finish the same record; ``summary.json`` is the whole
record once the run ends.

The JSON carries, beside the record's own fields, the keys of the summaries of earlier versions
(``counts``, ``copied``, ``verified``, ``copy_results``...): scripts read them. They are derived from
the record when it is written (``_legacy_keys``) and never read back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdh_migrate.transfer.copier import CopyCounts
from hdh_migrate.transfer.manifest import ManifestStats
from hdh_migrate.transfer.verify import VerifyCounts

if TYPE_CHECKING:
    from hdh_migrate.transfer.changes import DeltaPlan

RUN_SCHEMA = "hdh-migrate/run/v1"
COMMANDS = ("copy", "verify", "migrate", "delta_sync")


@dataclass(frozen=True)
class FileRef:
    """A per-object results file (Parquet) and the SHA-256 of its bytes, as the audit report cites it."""

    path: str
    rows: int
    sha256: str

    @classmethod
    def of(cls, stats: ManifestStats) -> FileRef:
        return cls(stats.path, stats.objects, stats.sha256)


@dataclass
class CopySection:
    """What the copy did, summed over the shards."""

    counts: CopyCounts = field(default_factory=CopyCounts)
    files: list[FileRef] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.counts.ok

    def to_json(self) -> dict[str, Any]:
        # the counts at the top of the section: the delta sync's summary always had them there
        return self.counts.to_dict() | {"files": [asdict(f) for f in self.files]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CopySection:
        names = {f.name for f in fields(CopyCounts)}
        return cls(CopyCounts(**{k: v for k, v in d.items() if k in names}), [FileRef(**f) for f in d["files"]])


@dataclass
class VerifySection:
    """What the verification found, summed over the shards; objects at the destination with no source count
    as ``extra`` (a destination that holds more than the source is not the source)."""

    depth: str
    counts: VerifyCounts
    files: list[FileRef] = field(default_factory=list)
    extra_examples: list[str] = field(default_factory=list)
    seconds: float | None = None
    #: a delta sync re-reads only what changed, on top of an earlier passing check of the previous state
    incremental: bool = False
    base_check_id: int | None = None
    base_run_id: str | None = None
    #: the evidence of that earlier check, which this one builds on (paths of results files)
    inherited_evidence: list[str] = field(default_factory=list)
    inherited_copy_results: list[str] = field(default_factory=list)
    #: what to do about objects at the destination with no source, when this run knows better than the
    #: generic advice (the delta sync: they are deletions left there under the 'report' policy)
    extra_advice: str | None = None
    #: the verification check this recorded in the state database, if any
    check_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.counts.ok

    def reason(self) -> str | None:
        """Why it did not pass, in one line (None when it passed)."""
        c = self.counts
        if c.ok:
            return None
        if c.extra:
            examples = ", ".join(self.extra_examples[:3])
            return f"{c.extra} object(s) at the destination have no source (e.g. {examples})" + (
                f"; {self.extra_advice}" if self.extra_advice else ""
            )
        problems = "; ".join(f"{p['key'] or p['name']}: {p['problem']} ({p['detail']})" for p in c.problems[:3])
        return f"{c.missing} missing, {c.differs} differing, {c.errors} unreadable: {problems}"

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("counts", "files")}
        return d | {
            "counts": self.counts.to_dict(),
            "files": [asdict(f) for f in self.files],
            "ok": self.ok,
            "reason": self.reason(),
            # the delta sync's summary said it so
            "objects_verified": self.counts.checked,
            "extras": self.counts.extra,
            "results": self.files[-1].path if self.files else None,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VerifySection:
        own = {f.name for f in fields(cls)} - {"counts", "files"}
        return cls(
            counts=VerifyCounts(**{k: v for k, v in d["counts"].items() if k != "ok"}),
            files=[FileRef(**f) for f in d["files"]],
            **{k: v for k, v in d.items() if k in own},
        )


@dataclass(frozen=True)
class ValidationRef:
    """One table's Great Expectations validation: its verdict and where its full result is."""

    table: str
    success: bool
    result: str  # validation/<table>.json
    data_docs: str | None = None


@dataclass
class DeltaSection:
    """What a delta sync found at the source (the plan: new, changed, deleted since the last listing) and
    what it did about blobs deleted at the source."""

    plan: DeltaPlan
    policy: str
    previous_fingerprint: str | None
    deletions: dict[str, Any] = field(default_factory=dict)
    foreign_extras: dict[str, Any] = field(default_factory=dict)
    validation_stale: str | None = None

    def to_json(self) -> dict[str, Any]:
        # the plan's counts at the top of the section: the delta sync's summary always had them there
        return self.plan.to_dict() | {
            "policy": self.policy,
            "previous_fingerprint": self.previous_fingerprint,
            "deletions": self.deletions,
            "foreign_extras": self.foreign_extras,
            "validation_stale": self.validation_stale,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DeltaSection:
        # the delta planner brings numpy and pyarrow (~0.15 s of import here): a copy or a verification, which
        # builds a record at every run, never reads a delta sync's back
        from hdh_migrate.transfer.changes import DeltaPlan

        own = {f.name for f in fields(cls)} - {"plan"}
        return cls(plan=DeltaPlan.from_dict(d), **{k: v for k, v in d.items() if k in own})


@dataclass
class RunRecord:
    """One run, from its header (written when it starts) to its verdict."""

    command: str
    tool: str
    source: str
    destination: str
    started: str
    work_dir: str
    dataset: str | None = None
    run_id: str | None = None
    triggered_by: str | None = None
    source_endpoint: str | None = None
    destination_endpoint: str | None = None
    provider: str | None = None
    encryption: dict[str, Any] = field(default_factory=dict)
    #: what the user gave (Airflow Params, command-line flags), and the copy options they made
    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    inventory: ManifestStats | None = None
    shards: int = 0
    copy: CopySection | None = None
    verification: VerifySection | None = None
    validations: list[ValidationRef] = field(default_factory=list)
    delta: DeltaSection | None = None
    finished: str | None = None
    seconds: float | None = None
    schema: str = RUN_SCHEMA

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise ValueError(f"unknown run command {self.command!r}")

    @property
    def ok(self) -> bool:
        """The run's verdict: every object copied, every object verified (nothing extra at the destination),
        every table validated. A dry run copies and verifies nothing: its verdict is its listing's."""
        if self.copy is not None and not self.copy.ok:
            return False
        if self.verification is not None and not self.verification.ok:
            return False
        return all(v.success for v in self.validations)

    def finish(self, **sections: Any) -> RunRecord:
        return replace(self, **sections)

    # -- JSON ----------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        own = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("inventory", "copy", "verification", "validations", "delta")
        }
        own |= {
            "inventory": _inventory_json(self.inventory),
            "copy": self.copy.to_json() if self.copy else None,
            "verification": self.verification.to_json() if self.verification else None,
            "validations": [asdict(v) for v in self.validations],
            "delta": self.delta.to_json() if self.delta else None,
            "ok": self.ok,
        }
        return _legacy_keys(self) | own

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunRecord:
        if d.get("schema") != RUN_SCHEMA:
            raise ValueError(f"not a run record of {RUN_SCHEMA}: schema {d.get('schema')!r}")
        own = {f.name for f in fields(cls)}
        plain = {k: v for k, v in d.items() if k in own}
        inv = d.get("inventory")
        return cls(
            **plain
            | {
                "inventory": ManifestStats(inv["path"], inv["objects"], inv["bytes"], inv["sha256"]) if inv else None,
                "copy": CopySection.from_json(d["copy"]) if d.get("copy") else None,
                "verification": VerifySection.from_json(d["verification"]) if d.get("verification") else None,
                "validations": [ValidationRef(**v) for v in d.get("validations") or []],
                "delta": DeltaSection.from_json(d["delta"]) if d.get("delta") else None,
            }
        )

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        return cls.from_json(json.loads(Path(path).read_text()))


def _inventory_json(inv: ManifestStats | None) -> dict[str, Any] | None:
    if inv is None:
        return None
    # "inventory" is the path again: the migration DAG's first summaries named it so
    return asdict(inv) | {"inventory": inv.path}


def _legacy_keys(r: RunRecord) -> dict[str, Any]:
    """The keys of the summaries hdh-migrate wrote before the run record, derived from it (never read back)."""
    out: dict[str, Any] = {}
    if r.copy is not None:
        out |= _legacy_copy(r, r.copy)
    if r.verification is not None:
        out |= _legacy_verification(r, r.verification)
    if r.delta is not None:
        out |= _legacy_delta(r.delta)
    return out


def _legacy_copy(r: RunRecord, copy: CopySection) -> dict[str, Any]:
    c = copy.counts
    out: dict[str, Any] = {
        "counts": c.to_dict(),
        "copied": c.copied,
        "copied_bytes": c.copied_bytes,
        "skipped": c.skipped,
        "retried": c.retried,
        "copy_results": [f.path for f in copy.files],
    }
    if r.seconds:
        out["mib_per_s"] = round(c.copied_bytes / 1048576 / r.seconds, 2)
    if len(copy.files) == 1:
        out["results"] = asdict(copy.files[0])
    return out


def _legacy_verification(r: RunRecord, v: VerifySection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "depth": v.depth,
        "verify_depth": v.depth,
        "verified": v.counts.matched,
        "extra_objects": v.counts.extra,
        "extra_examples": v.extra_examples[:20],
        "verify_results": [f.path for f in v.files],
    }
    if r.copy is None:  # `verify`: its counts and results file at the top
        out["counts"] = v.counts.to_dict()
        if len(v.files) == 1:
            out["results"] = asdict(v.files[0])
    elif r.command == "copy":  # `copy --verify`: the verification's own summary, nested
        out["verify"] = {
            "command": "verify",
            "depth": v.depth,
            "seconds": v.seconds,
            "counts": v.counts.to_dict(),
            "results": asdict(v.files[0]) if v.files else None,
            "ok": v.ok,
            "work_dir": r.work_dir,
        }
    return out


def _legacy_delta(d: DeltaSection) -> dict[str, Any]:
    out = {
        "deletions_policy": d.policy,
        "previous_fingerprint": d.previous_fingerprint,
        "fingerprint": d.plan.fingerprint,
        "deleted": d.deletions,
        "foreign_extras": d.foreign_extras,
    }
    return out | ({"validation_stale": d.validation_stale} if d.validation_stale else {})


__all__ = [
    "COMMANDS",
    "RUN_SCHEMA",
    "CopySection",
    "DeltaSection",
    "FileRef",
    "RunRecord",
    "ValidationRef",
    "VerifySection",
]
