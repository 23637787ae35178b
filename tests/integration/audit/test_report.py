"""The auditors' cutover report: signed, tamper-evident, locked in the destination, readable in a browser,
and free of data values. One real cutover (rig + SQLite) feeds every test of this module."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from hdh_migrate.audit.ledger import canonical
from hdh_migrate.audit.signing import generate_key_pair, legacy_key_id
from hdh_migrate.audit.state import open_state
from hdh_migrate.runs.context import RunContext
from hdh_migrate.runs.cutover import run_cutover
from hdh_migrate.runs.pair import open_pair
from hdh_migrate.runs.recording import record_validation
from hdh_migrate.stores import AzureBlobStore, S3Store
from hdh_migrate.stores.settings import azure_settings_from_env, s3_settings_from_env
from tests.helpers import close_state, gx_result, hdh, migrate, public_key_path, run_cli, seed, signing_key

PUBLIC = ["--public-key", str(public_key_path())]
# values a validation may see in the data: none of them may reach the report
PSEUDO_ID = "c0ffee5eed0f1d2a3b4c5d6e7f8091a2b3c4d5e6"
ROW_VALUE = 987654.321
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _with_data_values(result: dict[str, Any]) -> dict[str, Any]:
    """A validation result as validation/ could hold it internally, with values from rows in it (marked
    passing, so that the cutover goes ahead and its report is the one that must withhold them)."""
    r = json.loads(json.dumps(result))
    r["source"]["metrics"]["columns"] = {
        "ben_nir_psa": {"type": "string", "min": PSEUDO_ID, "max": PSEUDO_ID},
        "prs_act_qte": {"type": "double", "min": ROW_VALUE, "sum": ROW_VALUE},
    }
    r["destination"]["failed_expectations"] = [
        {
            "expectation": "expect_column_values_to_match_regex",
            "column": "ben_nir_psa",
            "unexpected_count": 1,
            "observed": [PSEUDO_ID],
        }
    ]
    r["comparison"] = {
        "equal": False,
        "differences": [
            {"metric": "max", "column": "ben_nir_psa", "source": PSEUDO_ID, "destination": PSEUDO_ID + "0"},
            {"metric": "sum", "column": "prs_act_qte", "source": ROW_VALUE, "destination": ROW_VALUE + 1},
            {"metric": "row_count", "column": None, "source": 1200, "destination": 1200},
        ],
    }
    return r


def _with_site(result: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The validation's Data Docs site as the validation run left it on its worker: an index and one page
    per side, linked by absolute paths."""
    site = folder / "data_docs" / result["table"]
    (site / "validations").mkdir(parents=True)
    (site / "index.html").write_text('<a href="validations/source.html">source</a>')
    for side in ("source", "destination"):
        (site / "validations" / f"{side}.html").write_text(f"<h1>{side}: 12/12 expectations met</h1>")
    return result | {
        "data_docs": str(site / "index.html"),
        "data_docs_pages": {side: str(site / "validations" / f"{side}.html") for side in ("source", "destination")},
    }


@pytest.fixture(scope="module")
def cutover_report(rig_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{tmp / 'state.db'}"
    st = open_state(url)
    src = AzureBlobStore(azure_settings_from_env(), f"src-{uuid.uuid4().hex[:12]}")
    src.create_container()
    dst = S3Store(s3_settings_from_env(), f"lock-{uuid.uuid4().hex[:12]}")
    dst.create_bucket(object_lock=True)
    seed(src, 8)
    # GOVERNANCE, one day (see the clean-up below): from the migration on, whose end anchors the ledger there
    saved = {k: os.environ.get(k) for k in ("HDH_MIGRATE_AUDIT_LOCK_MODE", "HDH_MIGRATE_AUDIT_RETENTION_DAYS")}
    os.environ.update({"HDH_MIGRATE_AUDIT_LOCK_MODE": "GOVERNANCE", "HDH_MIGRATE_AUDIT_RETENTION_DAYS": "1"})
    try:
        migrate(st, "er_prs_f", src, dst, tmp / "m", validation_required=True, actor="alice", run_id="manual__migrate")
        # two tables: one passing, one whose result carries values from rows: none may reach the report
        validations = [_with_site(gx_result("er_prs_f"), tmp / "gx"), _with_data_values(gx_result("er_pha_f"))]
        record_validation(st, "er_prs_f", validations, actor="bob", run_id="manual__gx")
        pair = open_pair(f"azure://{src.container}/snds", f"s3://{dst.container}/migrated")
        ctx = RunContext(tmp / "c", "manual__cutover", "carol", "er_prs_f")
        res = run_cutover(st, pair, ctx, key=signing_key())
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.update({k: v})
    try:
        yield {
            "url": url,
            "state": st,
            "dest": dst,
            "dir": Path(res.report["local"]).parent,
            "result": res,
            "doc": json.loads(Path(res.report["local"]).read_text()),
        }
    finally:
        close_state(url)
        # GOVERNANCE (not the production default, COMPLIANCE) so that the shared rig can be cleaned: only a
        # deletion that explicitly bypasses governance retention, as the rig's delete_bucket does, succeeds
        dst.delete_bucket()
        src.delete_container()


def _copy(report_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(report_dir, out)
    return out / "report.json"


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] = ord("7") if data[at] != ord("7") else ord("3")
    path.write_bytes(bytes(data))


def test_report_verifies_and_one_changed_byte_anywhere_is_detected(
    cutover_report: dict[str, Any], tmp_path: Path
) -> None:
    report = _copy(cutover_report["dir"], tmp_path)
    # the auditor's command, as a real process, with the pinned public key and no secret in its environment
    env = {"HDH_MIGRATE_REPORT_KEY": "", "HDH_MIGRATE_TRUSTED_KEYS": ""}
    r = run_cli("report", "verify", str(report), *PUBLIC, env=env)
    assert r.returncode == 0, r.stderr
    assert "report OK" in r.stdout and "decision cut_over" in r.stdout and "trusted Ed25519 key" in r.stdout

    # one digit of the JSON (a count): still valid JSON, but the signature no longer matches
    text = report.read_text()
    at = text.index('"listed": ') + len('"listed": ')
    _flip(report, at)
    r = hdh("report", "verify", str(report), *PUBLIC)
    assert r.returncode == 1 and "altered after signing" in r.stderr

    for name in ("report.html", "evidence.parquet", "evidence.csv"):
        report = _copy(cutover_report["dir"], tmp_path / name)
        target = report.parent / name
        _flip(target, target.stat().st_size // 2)
        r = hdh("report", "verify", str(report), *PUBLIC)
        assert r.returncode == 1 and f"{name} does not match the SHA-256 recorded in the report" in r.stderr

    # a page of the Data Docs is covered by the signed SHA256SUMS
    report = _copy(cutover_report["dir"], tmp_path / "docs")
    page = report.parent / "data-docs" / "er_prs_f" / "validations" / "source.html"
    page.write_text(page.read_text().replace("12/12", "11/12"))
    r = hdh("report", "verify", str(report), *PUBLIC)
    assert r.returncode == 1 and "data-docs/er_prs_f/validations/source.html does not match" in r.stderr

    # the list itself, edited to match the edit, no longer matches its signature
    sums = report.parent / "SHA256SUMS"
    sums.write_text("".join(ln for ln in sums.read_text().splitlines(keepends=True) if "source.html" not in ln))
    r = hdh("report", "verify", str(report), *PUBLIC)
    assert r.returncode == 1 and "SHA256SUMS.sig does not match SHA256SUMS" in r.stderr


def test_only_a_trusted_key_checks_a_report(cutover_report: dict[str, Any], tmp_path: Path) -> None:
    report = _copy(cutover_report["dir"], tmp_path)
    other = tmp_path / "other.pem"
    other.write_bytes(generate_key_pair()[1])
    r = hdh("report", "verify", str(report), "--public-key", str(other))
    assert r.returncode == 1 and "which is not among the trusted keys" in r.stderr
    # no key at all: the copy of the key inside the bundle is not trusted by itself
    r = hdh("report", "verify", str(report), env={"HDH_MIGRATE_TRUSTED_KEYS": ""})
    assert r.returncode == 1 and "no trusted public key" in r.stderr
    # rotation: the old and the new key both trusted, the report names the one that signed it
    folder = tmp_path / "trusted"
    folder.mkdir()
    shutil.copy(other, folder / "2027.pem")
    shutil.copy(public_key_path(), folder / "2026.pem")
    r = hdh("report", "verify", str(report), env={"HDH_MIGRATE_TRUSTED_KEYS": str(folder)})
    assert r.returncode == 0, r.stderr


def _verify_commands(verify_txt: str) -> list[str]:
    """The commands VERIFY.txt tells an auditor to type (indented five spaces), hdh-migrate's excepted."""
    lines = [ln.strip() for ln in verify_txt.splitlines() if ln.startswith("     ") and ln.strip()]
    return [ln for ln in lines if ln.startswith(("openssl", "sha256sum"))]


def test_the_bundle_checks_with_openssl_and_sha256sum_alone(cutover_report: dict[str, Any], tmp_path: Path) -> None:
    """What VERIFY.txt says, typed as written, in a copy of the bundle, with no hdh-migrate."""
    folder = _copy(cutover_report["dir"], tmp_path).parent
    commands = _verify_commands((folder / "VERIFY.txt").read_text())
    assert [c.split()[0] for c in commands] == ["openssl", "openssl", "sha256sum"], commands
    out = [subprocess.run(c, shell=True, cwd=folder, capture_output=True, text=True) for c in commands]
    assert all(o.returncode == 0 for o in out), [o.stderr for o in out]
    assert out[0].stdout.split()[0] == cutover_report["doc"]["signature"]["key_id"].removeprefix("sha256:")
    assert "Signature Verified Successfully" in out[1].stdout
    assert "report.json: OK" in out[2].stdout and "data-docs/er_prs_f/index.html: OK" in out[2].stdout

    _flip(folder / "evidence.csv", 40)
    failed = subprocess.run(commands[2], shell=True, cwd=folder, capture_output=True, text=True)
    assert failed.returncode != 0 and "evidence.csv: FAILED" in failed.stdout
    (folder / "SHA256SUMS").write_text((folder / "SHA256SUMS").read_text().replace("evidence.csv", "evidence.tsv"))
    forged = subprocess.run(commands[1], shell=True, cwd=folder, capture_output=True, text=True)
    assert forged.returncode != 0 and "Signature Verified Successfully" not in forged.stdout


def test_a_report_of_the_old_kind_still_verifies_and_says_so(cutover_report: dict[str, Any], tmp_path: Path) -> None:
    """A report signed before 2026-12: HMAC-SHA256 with a shared secret, no SHA256SUMS."""
    report = _copy(cutover_report["dir"], tmp_path)
    doc = json.loads(report.read_text())
    body = {k: v for k, v in doc.items() if k not in ("signature", "signing")}
    secret = b"the old shared secret"
    mac = hmac.new(secret, canonical(body).encode("utf-8"), hashlib.sha256).hexdigest()
    old = body | {"signature": {"algorithm": "HMAC-SHA256", "key_id": legacy_key_id(secret), "value": mac}}
    report.write_text(json.dumps(old, indent=2, sort_keys=True))
    for name in ("SHA256SUMS", "SHA256SUMS.sig", "public-key.pem", "VERIFY.txt"):
        (report.parent / name).unlink()
    r = hdh("report", "verify", str(report), env={"HDH_MIGRATE_REPORT_KEY": secret.decode()})
    assert r.returncode == 0, r.stderr
    assert "of the old kind" in r.stdout and "could also have written it" in r.stdout
    r = hdh("report", "verify", str(report), env={"HDH_MIGRATE_REPORT_KEY": "another secret"})
    assert r.returncode == 1 and "signed with key sha256:" in r.stderr


def test_report_holds_what_auditors_need(cutover_report: dict[str, Any]) -> None:
    doc = cutover_report["doc"]
    assert doc["dataset"] == "er_prs_f" and doc["decision"]["outcome"] == "cut_over"
    assert doc["decision"]["by"] == "carol" and doc["decision"]["run_id"] == "manual__cutover"
    assert doc["source"]["url"].startswith("azure://") and doc["destination"]["url"].startswith("s3://")
    assert doc["destination"]["provider"] == "seaweedfs"
    runs = {r["kind"]: r for r in doc["runs"]}
    assert runs["migrate"]["actor"] == "alice" and runs["migrate"]["run_id"] == "manual__migrate"
    assert runs["migrate"]["started"] and runs["migrate"]["finished"] and runs["cutover"]["actor"] == "carol"
    assert doc["code_version"].startswith("hdh-migrate/") and doc["config_hash"].startswith("sha256:")
    assert doc["counts"] | {"listed": 8, "copied": 8, "failed": 0, "extra": 0} == doc["counts"]
    assert doc["counts"]["listed_bytes"] == sum(2000 + i for i in range(8))
    assert doc["integrity"]["algorithm"] == "sha256" and doc["integrity"]["matched"] == 8
    assert doc["integrity"]["inventory_sha256"] and doc["encryption"]["mode"] == "none"
    assert doc["checks"]["verify"]["ok"] and doc["checks"]["validate"]["ok"]
    assert [v["table"] for v in doc["validation"]] == ["er_prs_f", "er_pha_f"]
    # the Data Docs travel in the bundle, linked relatively; a site not on this machine is said so
    assert doc["validation"][0]["data_docs"] == "data-docs/er_prs_f/index.html"
    assert doc["validation"][0]["data_docs_pages"]["source"] == "data-docs/er_prs_f/validations/source.html"
    assert (cutover_report["dir"] / doc["validation"][0]["data_docs_pages"]["destination"]).is_file()
    assert doc["validation"][1]["data_docs"] is None and not doc["validation"][1]["data_docs_included"]
    assert doc["retention"]["object_lock"] and doc["retention"]["mode"] == "GOVERNANCE"
    assert doc["ledger"]["head_seq"] > 5 and len(doc["ledger"]["head_hash"]) == 64
    assert doc["signature"]["algorithm"] == "Ed25519" and doc["signing"]["key_id"] == doc["signature"]["key_id"]
    ev = pq.read_table(cutover_report["dir"] / "evidence.parquet").to_pylist()
    assert len(ev) == 8 and all(e["match"] for e in ev)
    assert all(e["source_sha256"] == e["dest_sha256"] and len(e["source_sha256"]) == 64 for e in ev)
    assert {e["source_sha256_how"] for e in ev} == {"computed while copying from the source bytes"}
    assert {e["dest_sha256_how"] for e in ev} == {"re-read from the destination by verify (full)"}
    # the ledger head signed into the report anchors the ledger
    report = str(cutover_report["dir"] / "report.json")
    r = hdh("audit", "verify", "--db", cutover_report["url"], "--report", report, *PUBLIC)
    assert r.returncode == 0 and "1 report anchor(s) present" in r.stdout
    # the anchor of a report whose signature cannot be checked is not trusted
    r = hdh("audit", "verify", "--db", cutover_report["url"], "--report", report, env={"HDH_MIGRATE_TRUSTED_KEYS": ""})
    assert r.returncode == 1 and "no trusted public key" in r.stderr


def test_no_pseudonymised_id_or_row_value_in_the_report(cutover_report: dict[str, Any]) -> None:
    for name in ("report.json", "report.html", "evidence.csv"):
        text = (cutover_report["dir"] / name).read_text()
        assert PSEUDO_ID not in text, name
        assert str(ROW_VALUE) not in text and "987654" not in text, name
    diffs = cutover_report["doc"]["validation"][1]["comparison"]["differences"]
    assert diffs[0] == {
        "metric": "max",
        "column": "ben_nir_psa",
        "source": "(withheld: may be a data value)",
        "destination": "(withheld: may be a data value)",
    }
    assert diffs[2]["source"] == 1200  # counts are kept


def test_audit_files_are_locked_in_the_destination(cutover_report: dict[str, Any]) -> None:
    dest: S3Store = cutover_report["dest"]
    uploaded = cutover_report["result"].report["uploaded"]
    bundle = {p.relative_to(cutover_report["dir"]).as_posix() for p in cutover_report["dir"].rglob("*") if p.is_file()}
    assert set(uploaded) == bundle  # the whole bundle, paths kept
    assert {"report.json", "report.html", "evidence.parquet", "evidence.csv", "public-key.pem", "VERIFY.txt"} < bundle
    assert {"SHA256SUMS", "SHA256SUMS.sig", "data-docs/er_prs_f/index.html"} < bundle
    sums = uploaded["SHA256SUMS.sig"].split("/", 3)[3]
    assert dest.client.head_object(Bucket=dest.container, Key=sums)["ObjectLockMode"] == "GOVERNANCE"
    key = uploaded["report.json"].split("/", 3)[3]
    assert key.startswith("_hdh-audit/er_prs_f/")
    head = dest.client.head_object(Bucket=dest.container, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"]
    body = dest.client.get_object(Bucket=dest.container, Key=key)["Body"].read()
    assert body == (cutover_report["dir"] / "report.json").read_bytes()
    with pytest.raises(ClientError) as exc:  # an ordinary deletion of the locked version is refused
        dest.client.delete_object(Bucket=dest.container, Key=key, VersionId=head["VersionId"])
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert dest.client.head_object(Bucket=dest.container, Key=key)["VersionId"] == head["VersionId"]


@pytest.mark.browser
def test_html_report_renders_in_headless_chromium(
    cutover_report: dict[str, Any], artifacts: Path, tmp_path: Path
) -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} missing: install Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,3400",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get((cutover_report["dir"] / "report.html").as_uri())
        doc = cutover_report["doc"]
        assert "Cutover report" in driver.title and "er_prs_f" in driver.title
        assert "Decision: CUT OVER" in driver.find_element(By.ID, "decision").text
        assert driver.find_element(By.ID, "fig-listed").text == str(doc["counts"]["listed"])
        assert driver.find_element(By.ID, "fig-copied").text == str(doc["counts"]["copied"])
        assert driver.find_element(By.ID, "fig-failed").text == "0"
        assert driver.find_element(By.ID, "fig-extra").text == "0"
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "carol" in body and "alice" in body and doc["integrity"]["evidence_sha256"] in body
        assert "GOVERNANCE" in body and "er_pha_f" in body and "Terms used in this report" in body
        # the Data Docs links work in the bundle as downloaded: relative, to files that are there
        link = driver.find_element(By.LINK_TEXT, "source").get_attribute("href")
        assert link.startswith((cutover_report["dir"] / "data-docs").as_uri()) and Path(link[7:]).is_file()
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1200, max(1200, int(height) + 40))
        driver.save_screenshot(str(artifacts / "report.png"))
    finally:
        driver.quit()


def test_the_ledger_head_is_anchored_and_locked_beside_the_report(cutover_report: dict[str, Any]) -> None:
    """The head the report signs is also written, under Object Lock, where the database cannot reach it."""
    anchor = cutover_report["result"].report["anchor"]
    assert anchor["ok"] and anchor["object_lock"] is True
    assert (anchor["seq"], anchor["hash"]) == cutover_report["state"].ledger_head()
    key = anchor["url"].split("/", 3)[3]
    assert key.startswith("_hdh-audit/_ledger/") and cutover_report["dest"].head(key) is not None
