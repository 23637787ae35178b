"""A dataset's lifecycle: its states, and which state each may be entered from (data, no database).

``planned -> copying -> copied -> verified -> validated -> cut_over``, and ``rolled_back``. The state
database (``audit/state.py``) enforces these transitions atomically; the steps that record a run read the
names from here without paying for the database layer's import (SQLAlchemy: ~0.3 s here), which a plain
``hdh-migrate copy`` never needs.
"""

from __future__ import annotations

PLANNED, COPYING, COPIED, VERIFIED, VALIDATED, CUT_OVER, ROLLED_BACK = (
    "planned",
    "copying",
    "copied",
    "verified",
    "validated",
    "cut_over",
    "rolled_back",
)
STATES = (PLANNED, COPYING, COPIED, VERIFIED, VALIDATED, CUT_OVER, ROLLED_BACK)

#: to_state -> the states it may be entered from. Re-copying (a delta sync) is allowed from any state
#: but cut_over: once the sovereign store is authoritative, writing to it from Azure needs a rollback first.
ALLOWED: dict[str, tuple[str, ...]] = {
    COPYING: (PLANNED, COPYING, COPIED, VERIFIED, VALIDATED, ROLLED_BACK),
    COPIED: (COPYING,),
    VERIFIED: (COPIED, VERIFIED),
    VALIDATED: (VERIFIED, VALIDATED),
    CUT_OVER: (VERIFIED, VALIDATED, ROLLED_BACK),
    ROLLED_BACK: (CUT_OVER,),
}
CHECK_KINDS = ("verify", "validate")


__all__ = [
    "ALLOWED",
    "CHECK_KINDS",
    "COPIED",
    "COPYING",
    "CUT_OVER",
    "PLANNED",
    "ROLLED_BACK",
    "STATES",
    "VALIDATED",
    "VERIFIED",
]
