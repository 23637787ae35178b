"""Where hdh-migrate keeps its own files on this machine: the default state database and the run folders."""

from __future__ import annotations

import os
from pathlib import Path


def state_home() -> Path:
    """$HDH_MIGRATE_HOME, else $XDG_STATE_HOME/hdh-migrate, else ~/.local/state/hdh-migrate."""
    if os.environ.get("HDH_MIGRATE_HOME"):
        return Path(os.environ["HDH_MIGRATE_HOME"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hdh-migrate"
