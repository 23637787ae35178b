"""The Airflow side of a typed error: a permanent one fails the task at once with its code, a transient one
is left to Airflow's retries -- whatever the error's class, its ``transient`` decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from hdh_migrate.errors import ChecksumMismatchError, CopyFailedError, ThrottledError

pytestmark = pytest.mark.airflow


@pytest.mark.parametrize(
    ("error", "fails_now", "code"),
    [
        (
            CopyFailedError("shard 3: 1 objects could not be copied", code="checksum_mismatch"),
            True,
            "checksum_mismatch",
        ),
        (CopyFailedError("shard 3: 2 objects failed transiently", transient=True), False, "copy_failed"),
        (ChecksumMismatchError("bytes differ"), True, "checksum_mismatch"),
        (ThrottledError("SlowDown"), False, "throttled"),
    ],
)
def test_permanent_errors_fail_at_once_and_transient_ones_are_retried(
    airflow_home: Path, error: Exception, fails_now: bool, code: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from hdh_airflow.alerts import error_code
    from hdh_airflow.errors import airflow_errors

    with pytest.raises(AirflowFailException if fails_now else type(error)) as info, airflow_errors("copying shard 3"):
        raise error
    assert error_code(info.value) == code  # what the alert line says, and the runbook keys on
    if fails_now:
        assert str(info.value).startswith(f"[{code}] copying shard 3: ")
