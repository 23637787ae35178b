"""The Airflow UI, through a real headless Chromium: log in, find the DAG, open its trigger form.

Starts a private local Airflow (hdh_migrate.airflow_local) on a free 127.0.0.1 port in a temporary
AIRFLOW_HOME with the project's dags/ and plugins/. Needs Debian's ``chromium`` and ``chromium-driver``
(``HDH_INSTALL_BROWSER=1 ./scripts/bootstrap`` as root installs them); skips with the reason otherwise.
Leaves a screenshot of the trigger form in tests/artifacts/airflow_trigger_form.png.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hdh_migrate.dev import airflow_local
from tests.helpers import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "hdh_migrate_dataset"
# HDH_TEST_DAGS_FOLDER: another dags folder (to develop this test against a stand-in DAG)
DAGS = Path(os.environ.get("HDH_TEST_DAGS_FOLDER") or ROOT / "dags").resolve()
DAG_FILE = DAGS / f"{DAG_ID}.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PARAMS = (
    "dataset",
    "source_conn_id",
    "source_container",
    "source_prefix",
    "dest_conn_id",
    "dest_bucket",
    "dest_prefix",
    "part_size_mib",
    "max_parallel",
    "verify",
    "dry_run",
)
UI_TIMEOUT = 60.0


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} missing: install Debian's chromium and chromium-driver "
            "(as root: HDH_INSTALL_BROWSER=1 ./scripts/bootstrap)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed in the venv (scripts/bootstrap installs the dev extra)")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[airflow_local.LocalAirflow]:
    _require_browser()
    if not DAG_FILE.exists():
        pytest.skip(f"{DAG_FILE} does not exist yet")
    home = tmp_path_factory.mktemp("airflow_home")
    af = airflow_local.start(home, None, dags_folder=DAGS)
    try:
        af.wait_healthy(timeout=240)
        af.wait_dag(DAG_ID, timeout=180)
        yield af
    except airflow_local.AirflowLocalError as exc:
        pytest.fail(f"local Airflow did not come up: {exc}")
    finally:
        af.stop()


@pytest.fixture(scope="module")
def browser(airflow: airflow_local.LocalAirflow, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium logged in to the UI as the admin (module-scoped: one login for every test)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    tmp = tmp_path_factory.mktemp("chromium")
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
        "--disable-quic",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp / 'profile'}",
        # tall enough for the whole trigger form in one screenshot
        "--window-size=1400,2600",
        # nothing but 127.0.0.1 resolves: the browser cannot reach any other address
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(
        service=Service(str(CHROMEDRIVER), log_output=str(tmp / "chromedriver.log")), options=options
    )
    driver.set_page_load_timeout(UI_TIMEOUT)
    try:
        _login(driver, airflow)
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def dag(airflow: airflow_local.LocalAirflow) -> dict[str, Any]:
    """The DAG's details from the REST API: display name and Params (value, schema, description)."""
    details = airflow.dag_details(DAG_ID)
    params = details.get("params") or {}
    missing = [p for p in PARAMS if p not in params]
    assert not missing, f"{DAG_ID} lacks the Params {missing} (has {sorted(params)})"
    return details


def _wait(what: str, check: Callable[[], Any], driver: Any, timeout: float = UI_TIMEOUT) -> Any:
    """Poll ``check`` until it returns something truthy; on timeout fail with what was on the page."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # selenium raises many kinds while a React page renders
            last_exc = exc
            value = None
        if value:
            return value
        time.sleep(0.5)
    text = _page_text(driver)[:1500]
    pytest.fail(
        f"timed out after {timeout:.0f} s waiting for {what}; url {driver.current_url}; "
        f"last error {last_exc!r}; page text:\n{text}"
    )


def _page_text(driver: Any) -> str:
    try:
        return str(driver.execute_script("return document.body ? document.body.innerText : ''"))
    except Exception as exc:
        return f"(no page text: {exc!r})"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _first_sentence(text: str) -> str:
    text = _norm(text)
    head = re.split(r"(?<=[.!?:;])\s", text, maxsplit=1)[0]
    return head[:120]


def _login(driver: Any, af: airflow_local.LocalAirflow) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{af.url}/")
    _wait("the login form (username field)", lambda: driver.find_elements(By.NAME, "username"), driver)
    driver.find_element(By.NAME, "username").send_keys(af.username)
    driver.find_element(By.NAME, "password").send_keys(af.password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(
        "the UI after login", lambda: "/auth/login" not in driver.current_url and "Dags" in _page_text(driver), driver
    )


def _form_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    dialogs = [d for d in driver.find_elements(By.CSS_SELECTOR, "[role=dialog]") if d.is_displayed()]
    return _norm(" ".join(str(driver.execute_script("return arguments[0].innerText", d)) for d in dialogs))


def _open_trigger_form(driver: Any, af: airflow_local.LocalAirflow, dag: dict[str, Any]) -> None:
    """Open the DAG's page, click Trigger, wait for the dialog with its Run Parameters."""
    from selenium.webdriver.common.by import By

    shown = str(dag.get("dag_display_name") or DAG_ID)
    driver.get(f"{af.url}/dags/{DAG_ID}")
    button = _wait(
        "the Trigger button on the DAG page",
        lambda: driver.find_element(By.CSS_SELECTOR, "[data-testid=trigger-dag-button]"),
        driver,
    )
    button.click()
    _wait(
        "the trigger dialog",
        lambda: "Trigger Dag" in _form_text(driver) and (shown in _form_text(driver) or DAG_ID in _form_text(driver)),
        driver,
    )
    if not driver.find_elements(By.CSS_SELECTOR, f"[role=dialog] [name=element_{PARAMS[0]}]"):
        # Run Parameters may be collapsed: open it
        for el in driver.find_elements(By.XPATH, "//*[@role='dialog']//button[contains(., 'Run Parameters')]"):
            el.click()
    _wait(
        "the Run Parameters fields",
        lambda: driver.find_elements(
            By.CSS_SELECTOR, f"[role=dialog] [name=element_{PARAMS[0]}], [role=dialog] #element_{PARAMS[0]}"
        ),
        driver,
    )


def _field(driver: Any, name: str) -> list[Any]:
    """The form element(s) Airflow renders for Param ``name`` (id or name ``element_<name>``)."""
    from selenium.webdriver.common.by import By

    return list(
        driver.find_elements(
            By.CSS_SELECTOR,
            f"[role=dialog] [name='element_{name}'], "
            f"[role=dialog] [id='element_{name}'], [role=dialog] [id$=':element_{name}']",
        )
    )


def test_dag_list_shows_the_dag(airflow: airflow_local.LocalAirflow, browser: Any, dag: dict[str, Any]) -> None:
    shown = str(dag.get("dag_display_name") or DAG_ID)  # the list shows the display name when there is one
    browser.get(f"{airflow.url}/dags")
    _wait(f"{shown!r} ({DAG_ID}) in the DAG list", lambda: shown in _page_text(browser), browser)


def test_trigger_form_shows_every_param_with_its_description(
    airflow: airflow_local.LocalAirflow, browser: Any, dag: dict[str, Any], artifacts: Path
) -> None:
    params = dag["params"]
    undescribed = [p for p in PARAMS if not _norm(str(params[p].get("description") or ""))]
    assert not undescribed, f"these Params of {DAG_ID} have no description: {undescribed}"
    # the form labels a field with the Param's title when it has one, else with its name
    labels = {p: _norm(str((params[p].get("schema") or {}).get("title") or p)) for p in PARAMS}
    sentences = {p: _first_sentence(str(params[p]["description"])) for p in PARAMS}

    _open_trigger_form(browser, airflow, dag)
    _wait(
        "every Param's field, label and description in the trigger form",
        lambda: all(
            _field(browser, p) and labels[p] in _form_text(browser) and sentences[p] in _form_text(browser)
            for p in PARAMS
        ),
        browser,
        timeout=30,
    )

    shot = artifacts / "airflow_trigger_form.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000, f"screenshot {shot} looks empty"

    text = _form_text(browser)
    no_field = [p for p in PARAMS if not _field(browser, p)]
    no_label = [f"{p}: {labels[p]!r}" for p in PARAMS if labels[p] not in text]
    no_desc = [f"{p}: {sentences[p]!r}" for p in PARAMS if sentences[p] not in text]
    assert not (no_field or no_label or no_desc), (
        f"missing from the trigger form: fields {no_field}, labels {no_label}, descriptions {no_desc}"
    )


def test_trigger_form_defaults_are_valid(
    airflow: airflow_local.LocalAirflow, browser: Any, dag: dict[str, Any], artifacts: Path
) -> None:
    """With the DAG's default Params the form must be valid: its Trigger button enabled."""
    from selenium.webdriver.common.by import By

    _open_trigger_form(browser, airflow, dag)
    time.sleep(2)  # let the form validate its defaults

    def submit() -> Any:
        buttons = [
            b
            for b in browser.find_elements(By.CSS_SELECTOR, "[role=dialog] button")
            if b.is_displayed() and _norm(b.text) == "Trigger"
        ]
        return buttons[-1] if buttons else None

    button = _wait("the Trigger button of the dialog", submit, browser)
    if not button.is_enabled() or button.get_attribute("disabled") is not None:
        browser.save_screenshot(str(artifacts / "airflow_trigger_form_invalid.png"))
        empty = [
            p
            for p in PARAMS
            if dag["params"][p].get("value") in ("", None)
            and "null" not in str((dag["params"][p].get("schema") or {}).get("type"))
        ]
        pytest.fail(
            "the trigger form is invalid with the DAG's default Params (its Trigger button is disabled), so a "
            f"user cannot trigger from the UI without editing fields. Params whose default is empty but whose "
            f"type does not allow null: {empty} (the UI treats an empty string as missing; "
            "use type=['null', 'string'] with default None). Screenshot: airflow_trigger_form_invalid.png"
        )


def test_no_airflow_port_listens_beyond_loopback(airflow: airflow_local.LocalAirflow) -> None:
    if not shutil.which("ss"):
        pytest.skip("ss (iproute2) is not installed")
    listening = airflow_local.listening_sockets(airflow.sid)
    assert any(f"{airflow_local.HOST}:{airflow.port}" in line for line in listening), listening
    assert airflow_local.non_loopback_listeners(airflow.sid) == []
