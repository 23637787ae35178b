"""Who runs what, and where its evidence goes: a run's identity and the layout of its work folder.

The command line and the Airflow tasks differ in where a run's folder is and how the run is named (a
time-stamped id on the command line, Airflow's run id in a DAG), never in what goes inside it: the file
names below are the same for every run, and users and scripts rely on them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hdh_migrate.home import state_home


def slug(text: str, limit: int | None = 60) -> str:
    """A string safe as one folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:limit]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- who ------------------------------------------------------------------------------------------------
def cli_actor(explicit: str | None = None) -> str:
    """Who runs a command line: --actor, else $HDH_MIGRATE_ACTOR, else ``cli:<login>`` (never empty)."""
    if explicit:
        return explicit
    if os.environ.get("HDH_MIGRATE_ACTOR"):
        return os.environ["HDH_MIGRATE_ACTOR"]
    import getpass  # lazy: it brings termios (~5 ms); copy and verify, which name no actor, never need it

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def airflow_actor(triggering_user: str | None, run_type: str | None) -> str:
    """Who runs a DAG run: the person (or API client) who triggered it, else ``airflow:<run type>``
    (``airflow:scheduled`` for the hourly delta sync)."""
    if triggering_user:
        return str(triggering_user)
    return f"airflow:{run_type or 'unknown'}"


def cli_run_id(kind: str) -> str:
    return f"cli__{kind}__{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}__{os.urandom(3).hex()}"


# -- where ------------------------------------------------------------------------------------------------
def cli_work_dir(kind: str, what: str) -> Path:
    """$HDH_MIGRATE_HOME/runs/<UTC time>-<kind>-<what>: a command line run's folder."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return state_home() / "runs" / f"{stamp}-{kind}-{slug(what)}"


def dataset_run_dir(root: Path, dataset: str, run_id: str) -> Path:
    """<root>/<dataset>/<run id>: a DAG run's folder, shared by all its tasks (and so by the workers)."""
    return root / dataset / slug(run_id, limit=None)


@dataclass(frozen=True)
class RunContext:
    """One run: its folder, its id, who runs it, the dataset it is about (None for a plain copy/verify).

    ``flat``: the command line's ``copy`` and ``verify`` keep one results file each at the top of the
    folder (``results.parquet``, ``verify.parquet``); runs cut in shards keep one per shard and try under
    ``results/``."""

    work_dir: Path
    run_id: str | None = None
    actor: str | None = None
    dataset: str | None = None
    flat: bool = False

    def sub(self, name: str) -> RunContext:
        """The same run, its evidence in a folder of its own (the delta sync of a cutover: delta-sync/)."""
        return RunContext(self.work_dir / name, self.run_id, self.actor, self.dataset, self.flat)

    @property
    def header_path(self) -> Path:
        return self.work_dir / "run.json"

    @property
    def summary_path(self) -> Path:
        return self.work_dir / "summary.json"

    @property
    def inventory_path(self) -> Path:
        return self.work_dir / "inventory.parquet"

    @property
    def dest_index_path(self) -> Path:
        return self.work_dir / "dest_index.npy"

    @property
    def shards_dir(self) -> Path:
        return self.work_dir / "shards"

    def copy_results(self, shard: int, try_number: int = 1) -> Path:
        if self.flat:
            return self.work_dir / "results.parquet"
        return self.work_dir / "results" / f"copy-{shard:05d}-try{try_number}.parquet"

    def verify_results(self, shard: int) -> Path:
        if self.flat:
            return self.work_dir / "verify.parquet"
        return self.work_dir / "results" / f"verify-{shard:05d}.parquet"

    def rejected_by_verify(self, shard: int) -> Path:
        """The objects a verification of this shard rejected: its copy, run again, copies them again."""
        return self.work_dir / "results" / f"verify-rejected-{shard:05d}.json"

    def validation_result(self, table: str) -> Path:
        return self.work_dir / "validation" / f"{table}.json"

    def data_docs(self, table: str) -> Path:
        return self.work_dir / "data_docs" / table


__all__ = [
    "RunContext",
    "airflow_actor",
    "cli_actor",
    "cli_run_id",
    "cli_work_dir",
    "dataset_run_dir",
    "now_iso",
    "slug",
]
