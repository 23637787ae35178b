"""``hdh-migrate migrate``, as an operator runs it on the rig: the exit status says what happened, and a
second run of the same dataset copies nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hdh_migrate.audit.state import open_state
from hdh_migrate.stores import AzureBlobStore, S3Store
from tests.helpers import close_state, payload, run_cli

pytestmark = pytest.mark.usefixtures("rig_env")


def _migrate(src: AzureBlobStore, dst: S3Store, db: str, tmp_path: Path, *extra: str) -> tuple[int, dict, str]:
    r = run_cli(
        "migrate", f"azure://{src.container}/snds", f"s3://{dst.container}/migrated", "--dataset", "docs",
        "--db", db, "--no-validation-required", "--json", *extra, env={"HDH_MIGRATE_HOME": str(tmp_path)},
    )  # fmt: skip
    return r.returncode, json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}, r.stderr


def test_exit_status_is_0_when_all_is_right_1_when_the_data_is_not_2_when_the_input_is(
    azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'state.db'}"
    for i in range(4):
        azure_container.put(f"snds/docs/part-{i}.bin", payload(1000 + i, seed=i))
    code, record, err = _migrate(azure_container, s3_bucket, db, tmp_path)
    assert code == 0, err
    assert record["ok"] and record["copied"] == 4 and record["verified"] == 4 and record["command"] == "migrate"

    code, record, _ = _migrate(azure_container, s3_bucket, db, tmp_path)  # again: nothing to copy
    assert code == 0 and record["copied"] == 0 and record["skipped"] == 4

    s3_bucket.put("migrated/docs/stray.bin", b"not from the source")
    code, _, err = _migrate(azure_container, s3_bucket, db, tmp_path)
    assert code == 1 and "have no source" in err and "stray.bin" in err

    code, _, err = _migrate(azure_container, s3_bucket, db, tmp_path, "--part-size", "1MiB")
    assert code == 2 and "part size" in err  # refused before anything is listed

    st = open_state(db)
    try:
        assert [r.ok for r in st.runs("docs")] == [True, True, False]
        assert not st.latest_check("docs", "verify").ok  # the stray object blocks the cutover
    finally:
        close_state(db)
