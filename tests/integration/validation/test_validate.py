"""Dual-run validation against the real rig: Azure source, S3 destination, GX suites from the model.

The tables are seeded once per module into Azurite and copied object by object to SeaweedFS; tests that
tamper copy the table again to a fresh prefix first, so they never disturb each other. The module uses
one container and two buckets and removes its buckets at the end: SeaweedFS gives each bucket its own
volumes and the shared rig has a limited number.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hdh_migrate.dev.seed import generate_rows, seed_table
from hdh_migrate.stores import AzureBlobStore, S3Store
from hdh_migrate.stores.settings import azure_settings_from_env, s3_settings_from_env
from hdh_migrate.validation.expectations import write_suite_from_schema
from hdh_migrate.validation.schema import load_schema
from hdh_migrate.validation.table import ValidationFailedError, format_report, validate_table
from tests.helpers import ROOT

SF = load_schema()
ROWS = {"IR_BEN_R": 1500, "ER_PRS_F": 2000, "T_MCOaaB": 1200, "T_MCOaaC": 1000}
SEED, UNIVERSE = 11, 1500
PREFIX = "warehouse/2024"


@dataclass
class Side:
    """A store and a base prefix in it: tests share two buckets (SeaweedFS has few volumes) and use
    their own prefixes instead of a bucket each."""

    store: AzureBlobStore | S3Store
    base: str = ""

    def url(self, prefix: str = PREFIX) -> str:
        return f"{self.store.kind}://{self.store.container}/{self.base}{prefix}"

    def name(self, relative: str) -> str:
        return self.base + relative


def _copy_all(src: Side, dst: Side, prefix: str) -> int:
    """Copy every object under prefix, byte for byte (stand-in for the copy engine in these tests)."""
    n = 0
    for info in src.store.list(src.name(prefix)):
        data = src.store.read_range(info.name, 0, info.size)
        relative = info.name[len(src.base) :]
        dst.store.put(dst.name(relative), data, content_type=info.content_type, md5=hashlib.md5(data).digest())
        n += 1
    return n


def _rewrite(side: Side, relative: str, change: Callable[[pa.Table], pa.Table]) -> None:
    """Re-write one Parquet file with a change; the new bytes carry their own (consistent) MD5."""
    name = side.name(relative)
    info = side.store.head(name)
    assert info is not None
    table = pq.read_table(io.BytesIO(side.store.read_range(name, 0, info.size)))
    buf = io.BytesIO()
    pq.write_table(change(table), buf, row_group_size=300, compression="zstd")
    data = buf.getvalue()
    side.store.put(name, data, content_type="application/vnd.apache.parquet", md5=hashlib.md5(data).digest())


def _read(side: Side, relative: str) -> pa.Table:
    info = side.store.head(side.name(relative))
    assert info is not None
    return pq.read_table(io.BytesIO(side.store.read_range(info.name, 0, info.size)))


def _drop_bucket(s3: S3Store) -> None:
    for info in s3.list(""):
        s3.delete(info.name)
    s3.client.delete_bucket(Bucket=s3.container)


@pytest.fixture(scope="module")
def rig_stores(rig_env: dict[str, str]) -> Iterator[dict[str, AzureBlobStore | S3Store]]:
    """One container and two buckets for the whole module; the buckets are removed afterwards."""
    az = AzureBlobStore(azure_settings_from_env(), f"src-{uuid.uuid4().hex[:12]}")
    az.create_container()
    stores: dict[str, AzureBlobStore | S3Store] = {"azure": az}
    for key in ("s3", "scratch"):
        s3 = S3Store(s3_settings_from_env(), f"dst-{uuid.uuid4().hex[:12]}")
        s3.create_bucket()
        stores[key] = s3
    yield stores
    for key in ("s3", "scratch"):
        _drop_bucket(stores[key])  # type: ignore[arg-type]


@pytest.fixture
def fresh(rig_stores) -> Callable[[str], Side]:
    """A new, empty place on the Azure or the S3 side (a unique prefix in a shared container/bucket)."""
    return lambda kind: Side(rig_stores["azure" if kind == "azure" else "scratch"], f"t{uuid.uuid4().hex[:10]}/")


@pytest.fixture(scope="module")
def copied(rig_stores) -> tuple[Side, Side]:
    """The four SNDS tables seeded into Azure (several files each) and copied to S3."""
    src, dst = Side(rig_stores["azure"]), Side(rig_stores["s3"])
    for name, rows in ROWS.items():
        seed_table(
            src.url(),
            SF.table(name),
            rows,
            schemas=SF,
            seed=SEED,
            universe=UNIVERSE,
            rows_per_file=1000,
            row_group_size=300,
        )
    assert _copy_all(src, dst, PREFIX + "/") == 7
    return src, dst


def _suite(name: str) -> str:
    return str(ROOT / "expectations" / f"{name}.json")


def test_suites_from_the_shared_schemas_pass_on_both_sides_after_a_copy(copied, tmp_path: Path) -> None:
    source, destination = copied
    src, dst = source.url(), destination.url()
    docs = tmp_path / "data_docs"
    ids = set(
        generate_rows(SF.table("IR_BEN_R"), 0, ROWS["IR_BEN_R"], seed=SEED, schemas=SF)["BEN_NIR_PSA"].to_pylist()
    )
    results = {}
    for name, rows in ROWS.items():
        result = results[name] = validate_table(name, _suite(name), src, dst, data_docs_dir=docs)
        assert result["success"], format_report(result)
        assert result["comparison"] == {"equal": True, "differences": []}
        for side in ("source", "destination"):
            assert result[side]["success"] and result[side]["failed_expectations"] == []
            assert result[side]["metrics"]["row_count"] == rows
            assert result[side]["files"] == -(-rows // 1000)
        assert result["source"]["url"] == f"{src}/{name}/"
        metrics = result["source"]["metrics"]
        assert len(metrics["fingerprint"]) == 16
        pk = "+".join(SF.table(name).primary_key)
        assert metrics["distinct"][pk]["count"] == rows
        text = json.dumps(result) + format_report(result)
        # counts and fingerprints only: no pseudonymised id reaches the result or the report
        assert not any(i in text for i in ids)
        assert Path(result["data_docs"]).is_file()
        assert set(result["data_docs_pages"]) == {"source", "destination"}
    index = (docs / "index.html").read_text()
    assert all(name in index for name in ROWS)  # one Data Docs site for all tables
    html = "".join(p.read_text() for p in docs.rglob("*.html"))
    assert not any(i in html for i in ids)
    # ER_PRS_F references beneficiaries: its foreign key is counted too, and never shows an id
    prs = results["ER_PRS_F"]
    assert 0 < prs["source"]["metrics"]["distinct"]["BEN_NIR_PSA+BEN_RNG_GEM"]["count"] <= UNIVERSE
    assert "min" not in prs["source"]["metrics"]["columns"]["DCT_ORD_NUM"]  # key columns: no values
    assert "sum" in prs["source"]["metrics"]["columns"]["PRS_PAI_MNT"]


def _first_non_null(table: pa.Table, column: str) -> int:
    return next(i for i, v in enumerate(table[column].to_pylist()) if v is not None)


def _alter_value(t: pa.Table) -> pa.Table:
    values = t["SEJ_NBJ"].to_pylist()
    i = _first_non_null(t, "SEJ_NBJ")
    values[i] = values[i] + 1 if values[i] < 2999 else values[i] - 1  # still valid for the model
    return t.set_column(t.schema.get_field_index("SEJ_NBJ"), "SEJ_NBJ", pa.array(values, pa.int64()))


def _drop_row(t: pa.Table) -> pa.Table:
    return pa.concat_tables([t.slice(0, 5), t.slice(6)])


def _change_type(t: pa.Table) -> pa.Table:
    i = t.schema.get_field_index("AGE_ANN")
    return t.set_column(i, pa.field("AGE_ANN", pa.int32()), t["AGE_ANN"].cast(pa.int32()))


@pytest.mark.parametrize(
    ("change", "expected_metrics", "destination_fails"),
    [
        (_alter_value, {("fingerprint", None), ("fingerprint", "SEJ_NBJ"), ("sum", "SEJ_NBJ")}, False),
        (_drop_row, {("row_count", None), ("fingerprint", None)}, False),
        (_change_type, {("type", "AGE_ANN"), ("fingerprint", "AGE_ANN"), ("fingerprint", None)}, True),
    ],
    ids=["altered-value", "dropped-row", "changed-type"],
)
def test_a_tampered_destination_file_blocks_the_cutover(
    copied, fresh, change, expected_metrics: set, destination_fails: bool
) -> None:
    src, _ = copied
    dst = fresh("s3")
    _copy_all(src, dst, f"{PREFIX}/T_MCOaaB/")
    _rewrite(dst, f"{PREFIX}/T_MCOaaB/part-00001.parquet", change)  # the second of two files
    src_url, dst_url = src.url(), dst.url()
    with pytest.raises(ValidationFailedError) as err:
        validate_table("T_MCOaaB", _suite("T_MCOaaB"), src_url, dst_url, data_docs_dir=None)
    result = err.value.result
    assert not result["success"] and not result["comparison"]["equal"]
    found = {(d["metric"], d["column"]) for d in result["comparison"]["differences"]}
    assert expected_metrics <= found, found
    assert result["source"]["success"]
    assert result["destination"]["success"] is not destination_fails
    msg = str(err.value)
    assert msg.startswith("T_MCOaaB: validation failed")
    assert "differ" in msg
    if destination_fails:
        failed = result["destination"]["failed_expectations"]
        assert [(f["expectation"], f["column"]) for f in failed] == [
            ("expect_column_values_to_be_of_type", "AGE_ANN")
        ], failed
        assert failed[0]["observed"] == ["int32", "int64"]  # one file changed, the other not
        assert "destination" in msg and "expect_column_values_to_be_of_type(AGE_ANN)" in msg
    report = format_report(result)
    assert "FAIL -- cutover blocked" in report
    for metric, column in expected_metrics:
        assert metric in report and (column is None or column in report)


def test_the_same_change_on_the_source_alone_is_caught(copied, fresh) -> None:
    pristine, dst = copied
    src = fresh("azure")
    _copy_all(pristine, src, f"{PREFIX}/T_MCOaaB/")
    _rewrite(src, f"{PREFIX}/T_MCOaaB/part-00000.parquet", _alter_value)
    src_url, dst_url = src.url(), dst.url()
    result = validate_table(
        "T_MCOaaB", _suite("T_MCOaaB"), src_url, dst_url, data_docs_dir=None, raise_on_failure=False
    )
    assert not result["success"]
    assert ("sum", "SEJ_NBJ") in {(d["metric"], d["column"]) for d in result["comparison"]["differences"]}


def test_a_value_outside_the_model_fails_the_suite_with_a_typed_error(copied, fresh) -> None:
    src, _ = copied
    dst = fresh("s3")
    _copy_all(src, dst, f"{PREFIX}/T_MCOaaB/")

    def out_of_range(t: pa.Table) -> pa.Table:
        ages = t["AGE_ANN"].to_pylist()
        ages[_first_non_null(t, "AGE_ANN")] = 150  # the model says 1..120
        return t.set_column(t.schema.get_field_index("AGE_ANN"), "AGE_ANN", pa.array(ages, pa.int64()))

    _rewrite(dst, f"{PREFIX}/T_MCOaaB/part-00000.parquet", out_of_range)
    src_url, dst_url = src.url(), dst.url()
    with pytest.raises(ValidationFailedError) as err:
        validate_table("T_MCOaaB", _suite("T_MCOaaB"), src_url, dst_url, data_docs_dir=None)
    assert err.value.code == "validation_failed" and not err.value.transient
    failed = err.value.result["destination"]["failed_expectations"]
    assert failed == [
        {
            "expectation": "expect_column_values_to_be_between",
            "column": "AGE_ANN",
            "unexpected_count": 1,
            "element_count": ROWS["T_MCOaaB"],
            "failed_batches": 1,
            "scope": "batch",
            "why": "minimum/maximum constraints",
            "origin": "schema",
        }
    ]
    assert "partial_unexpected" not in json.dumps(err.value.result)  # GX's samples of bad values never appear
    assert "destination" in str(err.value) and "expect_column_values_to_be_between(AGE_ANN)" in str(err.value)


@pytest.mark.parametrize("group_bytes", [1, None], ids=["a-batch-per-file", "small-files-share-batches"])
def test_a_duplicate_key_across_files_is_caught(copied, fresh, group_bytes: int | None) -> None:
    """A GX batch sees only itself; uniqueness is re-checked over all files with hashed keys."""
    src, _ = copied
    dst = fresh("s3")
    _copy_all(src, dst, f"{PREFIX}/IR_BEN_R/")
    first = _read(src, f"{PREFIX}/IR_BEN_R/part-00000.parquet")
    _rewrite(dst, f"{PREFIX}/IR_BEN_R/part-00001.parquet", lambda t: pa.concat_tables([first.slice(0, 1), t.slice(1)]))
    src_url, dst_url = src.url(), dst.url()
    result = validate_table(
        "IR_BEN_R",
        _suite("IR_BEN_R"),
        src_url,
        dst_url,
        data_docs_dir=None,
        raise_on_failure=False,
        group_bytes=group_bytes,
    )
    failed = {
        (f["expectation"], f.get("column") or "+".join(f.get("columns", []))): f
        for f in result["destination"]["failed_expectations"]
    }
    unique = failed[("expect_column_values_to_be_unique", "BEN_NIR_PSA")]
    assert unique["scope"] == "table"
    # one file per batch: no batch holds both rows, only the re-check over all files sees the duplicate;
    # the two small files in one batch: GX sees it there too
    assert unique["failed_batches"] == (0 if group_bytes == 1 else 1)
    assert ("expect_compound_columns_to_be_unique", "BEN_NIR_PSA+BEN_RNG_GEM") in failed
    assert ("distinct_count", "BEN_NIR_PSA") in {
        (d["metric"], d["column"]) for d in result["comparison"]["differences"]
    }


def test_small_files_share_batches(copied) -> None:
    """Files smaller than a group (32 MiB) are validated in shared batches: fewer GX runs, same outcome."""
    src, dst = copied
    runs = {
        group_bytes: validate_table(
            "ER_PRS_F", _suite("ER_PRS_F"), src.url(), dst.url(), data_docs_dir=None, group_bytes=group_bytes
        )
        for group_bytes in (1, None)
    }
    per_file, shared = runs[1], runs[None]
    for side in ("source", "destination"):
        assert per_file[side]["files"] == shared[side]["files"] == 2
        assert (per_file[side]["batches"], shared[side]["batches"]) == (2, 1)
        a, b = per_file[side]["metrics"], shared[side]["metrics"]
        assert a["row_count"] == b["row_count"] == ROWS["ER_PRS_F"]
        assert a["fingerprint"] == b["fingerprint"] and a["distinct"] == b["distinct"]
        for name, col in a["columns"].items():
            assert (col["fingerprint"], col["null_count"]) == (
                b["columns"][name]["fingerprint"],
                b["columns"][name]["null_count"],
            ), name
    assert shared["success"] and shared["comparison"]["equal"]


def test_worker_processes_give_the_one_process_result(copied, fresh, tmp_path: Path) -> None:
    """--jobs: each side's files split between processes, metrics and batch results merged."""
    src, _ = copied
    dst = fresh("s3")
    _copy_all(src, dst, f"{PREFIX}/ER_PRS_F/")
    # what only a merge over all files catches (a key of file 0 repeated in file 1), a value outside the
    # model in file 1, and a changed value in file 0 (fingerprints, sums)
    first = _read(src, f"{PREFIX}/ER_PRS_F/part-00000.parquet")
    _rewrite(dst, f"{PREFIX}/ER_PRS_F/part-00001.parquet", lambda t: pa.concat_tables([first.slice(0, 1), t.slice(1)]))

    def changed(t: pa.Table) -> pa.Table:
        q = t["PRS_ACT_QTE"].to_pylist()
        q[_first_non_null(t, "PRS_ACT_QTE")] += 1
        return t.set_column(
            t.schema.get_field_index("PRS_ACT_QTE"),
            t.schema.field("PRS_ACT_QTE"),
            pa.array(q, t.schema.field("PRS_ACT_QTE").type),
        )

    _rewrite(dst, f"{PREFIX}/ER_PRS_F/part-00000.parquet", changed)
    results = {}
    for jobs in (1, 2):
        # group_bytes=1: each (small) file a group of its own, so that two processes get one file each
        r = validate_table(
            "ER_PRS_F",
            _suite("ER_PRS_F"),
            src.url(),
            dst.url(),
            data_docs_dir=tmp_path / f"docs{jobs}",
            raise_on_failure=False,
            jobs=jobs,
            group_bytes=1,
        )
        assert Path(r["data_docs"]).exists()
        results[jobs] = {k: v for k, v in r.items() if k not in ("validated_at", "data_docs", "data_docs_pages")}
    assert results[2] == results[1]
    one = results[1]
    assert not one["success"] and one["source"]["success"] and one["source"]["files"] == 2
    failed = {f["expectation"]: f for f in one["destination"]["failed_expectations"]}
    assert failed["expect_compound_columns_to_be_unique"]["scope"] == "table"
    differences = {(d["metric"], d["column"]) for d in one["comparison"]["differences"]}
    assert {("fingerprint", None), ("fingerprint", "PRS_ACT_QTE"), ("sum", "PRS_ACT_QTE")} <= differences


def test_worker_processes_start_under_a_main_script_they_cannot_run(copied, tmp_path: Path) -> None:
    """A spawned worker runs the parent's main script again, unless hidden. In an Airflow task that script
    is ``airflow``, which a worker cannot initialise (the DAG's validate_processes failed in a real
    deployment, not under dag.test): here, a main script that refuses to run twice."""
    src, dst = copied
    script = tmp_path / "main_script.py"
    script.write_text(
        "import logging\n"
        "if __name__ != '__main__':\n"
        "    raise SystemExit('a worker ran the main script again')\n"
        "from hdh_migrate.validation.table import validate_table\n"
        "logging.basicConfig(level=logging.INFO)\n"
        f"r = validate_table('ER_PRS_F', {_suite('ER_PRS_F')!r}, {src.url()!r}, {dst.url()!r}, data_docs_dir=None,\n"
        "                   jobs=2, group_bytes=1)\n"
        "print('RESULT', r['success'], r['source']['files'], r['destination']['files'])\n"
    )
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RESULT True 2 2" in run.stdout
    assert run.stderr.count("runs on 2 processes") == 2  # both sides spread over two processes
    assert "worker processes unavailable" not in run.stderr


def test_a_worker_process_killed_mid_validation_gives_an_actionable_error(copied) -> None:
    """An OOM-killed worker (SIGKILL here) fails the validation with a typed, retryable error saying what
    to lower, not with multiprocessing's BrokenProcessPool."""
    import multiprocessing
    import signal
    import threading
    import time

    from hdh_migrate.errors import TransientError
    from hdh_migrate.validation.table import ValidationWorkerError

    src, dst = copied
    outcome: dict[str, BaseException | dict] = {}

    def run() -> None:
        try:
            outcome["result"] = validate_table(
                "ER_PRS_F", _suite("ER_PRS_F"), src.url(), dst.url(), data_docs_dir=None, jobs=2, group_bytes=1
            )
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    killed = None
    while killed is None and time.monotonic() < deadline and worker.is_alive():
        children = multiprocessing.active_children()
        if children:
            killed = children[0].pid
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    worker.join(timeout=300)
    assert killed is not None, "no worker process was started"
    error = outcome.get("error")
    assert isinstance(error, ValidationWorkerError) and isinstance(error, TransientError), outcome
    assert "ER_PRS_F: a validation worker process died" in str(error)
    assert "validate_processes" in str(error) and "--batch-rows" in str(error)


def test_a_table_the_generator_has_never_seen_gets_a_working_suite(fresh, tmp_path: Path) -> None:
    schema = tmp_path / "pharma.json"
    schema.write_text(
        json.dumps(
            {
                "tables": {
                    "T_PHA_DEL": {
                        "primaryKey": ["DEL_ID", "LIG_NUM"],
                        "foreignKeys": [
                            {"fields": "BEN_NIR_PSA", "reference": {"resource": "IR_BEN_R", "fields": "BEN_NIR_PSA"}}
                        ],
                        "fields": [
                            {"name": "DEL_ID", "type": "string", "length": "20", "constraints": {"minLength": 20}},
                            {"name": "LIG_NUM", "type": "integer", "length": "3", "constraints": {"minimum": 1}},
                            {"name": "BEN_NIR_PSA", "type": "string", "length": "17", "constraints": {"minLength": 17}},
                            {"name": "CIP13", "type": "string", "length": "13", "constraints": {"minLength": 13}},
                            {"name": "QTE", "type": "integer", "constraints": {"minimum": 1, "maximum": 99}},
                            {"name": "MNT", "type": "number", "length": "9,2"},
                            {"name": "DEL_DTE", "type": "datetime"},
                            {"name": "SUBST", "type": "boolean"},
                            {"name": "CANAL", "type": "string", "constraints": {"enum": ["OFF", "WEB", ""]}},
                        ],
                    }
                }
            }
        )
    )
    suite = write_suite_from_schema(schema, "T_PHA_DEL", tmp_path / "expectations" / "T_PHA_DEL.json").path
    src, dst = fresh("azure"), fresh("s3")
    custom = load_schema(schema)
    seed_table(
        src.url("extra"), custom.table("T_PHA_DEL"), 900, schemas=custom, seed=2, rows_per_file=500, row_group_size=250
    )
    _copy_all(src, dst, "extra/")
    src_url, dst_url = src.url("extra"), dst.url("extra")
    result = validate_table("T_PHA_DEL", suite, src_url, dst_url, data_docs_dir=tmp_path / "docs")
    assert result["success"], format_report(result)
    assert result["source"]["expectations"]["evaluated"] >= 15
    assert result["source"]["metrics"]["distinct"]["DEL_ID+LIG_NUM"]["count"] == 900
    _rewrite(dst, "extra/T_PHA_DEL/part-00001.parquet", lambda t: t.slice(0, t.num_rows - 1))
    broken = validate_table("T_PHA_DEL", suite, src_url, dst_url, data_docs_dir=None, raise_on_failure=False)
    assert ("row_count", None) in {(d["metric"], d["column"]) for d in broken["comparison"]["differences"]}


def test_csv_tables_validate_too(fresh) -> None:
    src, dst = fresh("azure"), fresh("s3")
    seed_table(src.url("csv"), SF.table("IR_BEN_R"), 800, schemas=SF, seed=4, rows_per_file=500, fmt="csv")
    _copy_all(src, dst, "csv/")
    result = validate_table("IR_BEN_R", _suite("IR_BEN_R"), src.url("csv"), dst.url("csv"), data_docs_dir=None)
    assert result["success"], format_report(result)
    assert result["source"]["metrics"]["columns"]["BEN_IDT_MAJ"]["type"] == "date32[day]"


@pytest.mark.skipif(importlib.util.find_spec("hdh_migrate.cli") is None, reason="hdh_migrate.cli not written yet")
def test_the_validate_command(copied, fresh, tmp_path: Path) -> None:
    source, destination = copied
    src, dst = source.url(), destination.url()
    exe = Path(sys.executable).with_name("hdh-migrate")
    cmd = [
        str(exe),
        "validate",
        "--table",
        "T_MCOaaC",
        "--suite",
        _suite("T_MCOaaC"),
        src,
        dst,
        "--data-docs",
        str(tmp_path / "docs"),
        "--json-out",
        str(tmp_path / "result.json"),
    ]
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false")
    ok = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "RESULT: PASS" in ok.stdout and "all metrics equal" in ok.stdout
    assert "Skipping registering" not in ok.stderr
    assert json.loads((tmp_path / "result.json").read_text())["success"] is True
    assert (tmp_path / "docs" / "index.html").is_file()
    broken = fresh("s3")
    _copy_all(source, broken, f"{PREFIX}/T_MCOaaC/")
    _rewrite(broken, f"{PREFIX}/T_MCOaaC/part-00000.parquet", _drop_row)
    cmd[7] = broken.url()  # the destination
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "row_count" in bad.stdout and "FAIL -- cutover blocked" in bad.stdout
