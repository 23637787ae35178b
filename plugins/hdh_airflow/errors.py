"""hdh-migrate's typed errors as Airflow understands them: fail now, or retry.

A ``PermanentError`` (bad credentials, a missing container, a checksum mismatch, a refused cutover) fails the
task at once with ``AirflowFailException``: retrying cannot help until a person acts, and the message says
what to do (``[code] what: message -- hint``; the alert and the runbook key on the code). A
``TransientError`` (throttling, a store that is down, a source that changed mid-read) propagates: Airflow
retries the task with exponential backoff, and a task resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from airflow.sdk.exceptions import AirflowFailException

from hdh_migrate.errors import HdhMigrateError, PermanentError, TransientError

log = logging.getLogger("hdh_migrate.airflow")


@contextlib.contextmanager
def airflow_errors(what: str) -> Iterator[None]:
    """Permanent errors fail the task at once; transient ones are left to Airflow's retries."""
    try:
        yield
    except PermanentError as exc:
        raise AirflowFailException(f"[{exc.code}] {what}: {exc}") from exc
    except TransientError as exc:
        log.warning("[%s] %s: %s (Airflow will retry with backoff)", exc.code, what, exc)
        raise


def raise_failure(error: HdhMigrateError | None) -> None:
    """A step's verdict on the data, raised as the task's outcome (inside ``airflow_errors``)."""
    if error is not None:
        raise error
