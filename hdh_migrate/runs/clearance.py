"""Whether a dataset may be cut over now: every check present, passing and taken on the current source state.

The decision of the cutover, kept apart from its steps (``runs/cutover.py``) because it is read where
nothing is switched: ``hdh-migrate status`` shows the reasons a dataset is not ready, without importing the
stores, the report or the delta sync.

- the latest verification, and -- when the dataset is tabular (``validation_required``, the default) --
  the latest Great Expectations validation must exist, have passed, and have been taken on the source state
  the cutover listed (its fingerprint);
- a source that changed again after the cutover's own sync is refused: writes were not frozen.

Whether validation is required is a per-dataset flag set when the dataset is registered (default True,
since HDH datasets are tables; a dataset of documents is registered with ``validation_required=False``,
and that choice is itself in the ledger). It is deliberately not inferred from the presence of a
validation check: a missing check must block, not silently relax the rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hdh_migrate.audit.lifecycle import ALLOWED, CUT_OVER
from hdh_migrate.errors import PermanentError
from hdh_migrate.transfer.fingerprint import fingerprint_count

if TYPE_CHECKING:
    from hdh_migrate.audit.state import Check, StateStore

KEPT_CHANGING = (
    "the source kept changing during the cutover (it changed again after the delta sync): freeze writes at "
    "the source, then trigger the cutover again"
)


class CutoverRefusedError(PermanentError):
    """A cutover was refused: ``reasons`` lists every check that is failed, stale or missing."""

    code = "cutover_refused"
    exit_code = 1

    def __init__(self, dataset: str, reasons: list[str], *, report: str | None = None) -> None:
        lines = "\n".join(f"  - {r}" for r in reasons)
        super().__init__(
            f"cutover of {dataset!r} refused:\n{lines}" + (f"\n  report: {report}" if report else ""),
            hint="fix each reason (docs/AUDIT.md, section 5, says what each check means), then "
            "trigger the cutover again; nothing was switched",
        )
        self.dataset = dataset
        self.reasons = reasons
        self.report = report


def _when(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class FreezeCheck:
    """The source listed again, compared with the state the last verification was taken on."""

    fingerprint: str
    objects: int
    bytes: int
    inventory: str | None
    verified_fingerprint: str | None
    verified_run_id: str | None
    verified_at: str | None

    @property
    def changed(self) -> bool:
        return self.fingerprint != self.verified_fingerprint

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"changed": self.changed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FreezeCheck:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass
class Preflight:
    dataset: str
    fingerprint: str
    reasons: list[str] = field(default_factory=list)
    verify: Check | None = None
    validate: Check | None = None
    validation_required: bool = True

    @property
    def ok(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "ok": self.ok,
            "fingerprint": self.fingerprint,
            "reasons": self.reasons,
            "validation_required": self.validation_required,
            "verify": self.verify.to_dict() if self.verify else None,
            "validate": self.validate.to_dict() if self.validate else None,
        }


def _check_reason(check: Check | None, kind: str, fingerprint: str, hint_missing: str) -> str | None:
    label = {"verify": "verification", "validate": "validation"}[kind]
    if check is None:
        return f"{label} missing: no {label} has been recorded for this dataset ({hint_missing})"
    if not check.ok:
        why = check.details.get("reason") or "see the check's details"
        return f"{label} failed on run {check.run_id} ({_when(check.at)}): {why}"
    if check.source_fingerprint != fingerprint:
        then, now_ = fingerprint_count(check.source_fingerprint), fingerprint_count(fingerprint)
        counts = f" ({then} objects then, {now_} now)" if then is not None and now_ is not None else ""
        fix = (
            "run hdh_delta_sync (or let hdh_cutover sync) to copy and verify the changes"
            if kind == "verify"
            else "run the Great Expectations validation again on the current source"
        )
        return (
            f"{label} is stale: the source changed since the {label} on {_when(check.at)} (run "
            f"{check.run_id}){counts}; {fix}"
        )
    return None


def preflight(state: StateStore, dataset: str, current_fingerprint: str) -> Preflight:
    """Every reason the dataset cannot be cut over on this source state (empty: it can)."""
    ds = state.get(dataset)
    pf = Preflight(dataset, current_fingerprint, validation_required=ds.validation_required)
    if ds.state == CUT_OVER:
        since = _when(ds.authoritative_since) if ds.authoritative_since else "an unknown date"
        pf.reasons.append(f"already cut over on {since} (run {ds.authoritative_run_id})")
    elif ds.state not in ALLOWED[CUT_OVER]:
        pf.reasons.append(
            f"the dataset is {ds.state!r}: cutover needs it verified"
            + (" and validated" if ds.validation_required else "")
            + " (a copy may be running, or failed before verification)"
        )
    pf.verify = state.latest_check(dataset, "verify")
    r = _check_reason(pf.verify, "verify", current_fingerprint, "run hdh_migrate_dataset, which verifies")
    if r:
        pf.reasons.append(r)
    pf.validate = state.latest_check(dataset, "validate")
    if ds.validation_required:
        r = _check_reason(
            pf.validate, "validate", current_fingerprint, "run the Great Expectations validation of its tables"
        )
        if r:
            pf.reasons.append(r)
    return pf


def clearance(state: StateStore, dataset: str, freezes: list[FreezeCheck], *, synced: bool) -> Preflight:
    """The preflight on the latest listing; a source that changed again after a sync is refused too."""
    pf = preflight(state, dataset, freezes[-1].fingerprint)
    if synced and freezes[-1].changed:
        pf.reasons.append(KEPT_CHANGING)
    return pf


__all__ = ["KEPT_CHANGING", "CutoverRefusedError", "FreezeCheck", "Preflight", "clearance", "preflight"]
