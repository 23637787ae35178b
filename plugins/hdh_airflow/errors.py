"""hdh-migrate's typed errors as Airflow understands them: fail now, or retry.

A permanent error (bad credentials, a missing container, a checksum mismatch, a refused cutover) fails the
task at once with ``AirflowFailException``: retrying cannot help until a person acts, and the message says
what to do (``[code] what: message -- hint``; the alert and the runbook key on the code). A
transient one (throttling, a store that is down, a source that changed mid-read) propagates: Airflow
retries the task with exponential backoff, and a task resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from airflow.sdk.exceptions import AirflowFailException

from hdh_migrate.errors import HdhMigrateError

log = logging.getLogger("hdh_migrate.airflow")


@contextlib.contextmanager
def airflow_errors(what: str) -> Iterator[None]:
    """Permanent errors fail the task at once; transient ones are left to Airflow's retries. The error's own
    ``transient`` decides (a copy that failed is either, by what failed), not its class."""
    try:
        yield
    except HdhMigrateError as exc:
        if not exc.transient:
            raise AirflowFailException(f"[{exc.code}] {what}: {exc}") from exc
        log.warning("[%s] %s: %s (Airflow will retry with backoff)", exc.code, what, exc)
        raise


def raise_failure(error: HdhMigrateError | None) -> None:
    """A step's verdict on the data, raised as the task's outcome (inside ``airflow_errors``)."""
    if error is not None:
        raise error
