"""GX Data Docs for the audit report: each side's combined outcome as a GX result, and the HTML site.

The pages show counts and schema information only: the unexpected values GX would list are dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hdh_migrate.validation.gxrunner import GxRunner, restate
from hdh_migrate.validation.outcomes import Outcomes

_COUNTS = ("element_count", "unexpected_count", "missing_count")


def docs_result(outcomes: Outcomes, side: str, url: str) -> Any:
    """The combined result as a GX validation result (for Data Docs), without any unexpected values."""
    res = outcomes.first
    if res is None:
        return None
    for r, item in zip(res.results, outcomes.items, strict=True):
        r.success = item["success"]
        safe = {k: item[k] for k in _COUNTS if item[k]}
        if item["observed"]:
            obs = sorted(item["observed"])
            safe["observed_value"] = obs[0] if len(obs) == 1 else " | ".join(obs)
        if "element_count" in (r.result or {}):
            safe.setdefault("element_count", item["element_count"])
            safe.setdefault("unexpected_count", item["unexpected_count"])
            safe["partial_unexpected_list"] = []
        r.result = safe
    restate(res)
    meta = dict(res.meta or {})
    meta["active_batch_definition"] = {
        "datasource_name": side,
        "data_connector_name": "hdh-migrate",
        "data_asset_name": url,
        "batch_identifiers": {"side": side, "location": url},
    }
    meta["batch_spec"] = {"location": url, "batches": outcomes.batches}
    meta.pop("batch_markers", None)
    res.meta = meta
    return res


def build_docs(runner: GxRunner, table: str, results: dict[str, Any]) -> dict[str, Any]:
    """Add the sides' results (``docs_result``, by side name) to the runner's site and rebuild it.

    Returns the site's index page and each side's page."""
    # here, not at the top: GX's import costs ~6 s (gxrunner.quiet_gx), which the runner has paid by now
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    assert runner.docs_dir is not None
    now = datetime.now(UTC)
    run_id = RunIdentifier(run_name=f"{table}-{now:%Y%m%dT%H%M%S}", run_time=now)
    store = runner.ctx.stores["hdh_results"]
    # suites accumulate too, so the index lists every table validated into this folder
    runner.ctx.stores["hdh_suites"].add_or_update(ExpectationSuiteIdentifier(name=runner.suite.name), runner.suite)
    pages: dict[str, str] = {}
    for side, result in results.items():
        if result is None:
            continue
        suite_id = ExpectationSuiteIdentifier(name=runner.suite.name)
        key = ValidationResultIdentifier(expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=side)
        store.set(key, result)
        urls = runner.ctx.get_docs_sites_urls(resource_identifier=key, site_name="hdh", only_if_exists=False)
        if urls and urls[0].get("site_url"):
            pages[side] = urls[0]["site_url"].removeprefix("file://")
    runner.ctx.build_data_docs(site_names=["hdh"])
    return {"index": str(runner.docs_dir / "index.html"), "pages": pages}
