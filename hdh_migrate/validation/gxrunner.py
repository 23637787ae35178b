"""Great Expectations, run on one batch at a time: its quiet import, the runner, the exact bounds recount.

The suite runs in column groups (``gxplan``) through one ephemeral GX context per validation; GX is asked
for no unexpected-value samples, so its results hold counts and schema information only.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from hdh_migrate.validation import gxplan
from hdh_migrate.validation.expectations import SuiteError, active_expectations

log = logging.getLogger(__name__)
#: what GX is asked for: counts, and no sample of the values that failed (they may be ids)
_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


def quiet_gx() -> Any:
    """Import GX quietly: analytics off, its import-time INFO flood and progress bars silenced.

    Imported here, on first use, not with this module: GX's import costs ~6 s, which a wrong prefix (found
    by the listing) or a worker process that never validates should not pay.
    """
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx

    # some GX modules pin their own logger at INFO; quieten them all (their INFO lines are noise for us)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # GX hashes every in-memory frame below this size into a "pandas_data_fingerprint" batch marker (and
    # skips it above). Nothing reads it here, the Data Docs result drops the markers, and it was 46 % of a
    # batch's validation time once the suite ran in column groups (py-spy, ER_PRS_F): skip it always.
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0
    # GX derives an expectation's type from its class name with two regex substitutions each time it builds
    # the expectation's configuration, several times per expectation and batch: 15 % of a batch's fixed
    # cost (py-spy, ER_PRS_F). The function is pure: remember its answers.
    from great_expectations.expectations import expectation as gx_expectation

    if not hasattr(gx_expectation.camel_to_snake, "cache_info"):
        gx_expectation.camel_to_snake = functools.cache(gx_expectation.camel_to_snake)
    return gx


def to_pandas(t: pa.Table) -> Any:
    """Nullable pandas dtypes, so an int64 column stays int64 with nulls and its GX type check is exact."""
    import pandas as pd  # here, not at the top: ~1.4 s, paid only once GX (which needs it) runs

    mapping = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.float32(): pd.Float32Dtype(),
        pa.float64(): pd.Float64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.string(): pd.StringDtype(),
        pa.large_string(): pd.StringDtype(),
    }
    return t.to_pandas(types_mapper=mapping.get, date_as_object=False)


def _add_docs_site(ctx: Any, docs_dir: Path) -> None:
    """Stores for results and suites, and a Data Docs site built from them, under ``docs_dir``."""
    backend = {"class_name": "TupleFilesystemStoreBackend"}
    results_backend = {**backend, "base_directory": str(docs_dir / "_results")}
    ctx.add_store("hdh_results", {"class_name": "ValidationResultsStore", "store_backend": results_backend})
    suites_backend = {**backend, "base_directory": str(docs_dir / "_suites")}
    ctx.add_store("hdh_suites", {"class_name": "ExpectationsStore", "store_backend": suites_backend})
    ctx.add_data_docs_site(
        "hdh",
        {
            "class_name": "SiteBuilder",
            "store_backend": {**backend, "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "site_section_builders": {
                "validations": {"source_store_name": "hdh_results"},
                "expectations": {"source_store_name": "hdh_suites"},
                "profiling": "None",
            },
        },
    )


def _domain_expectations(table: str, expectations: list[dict[str, Any]]) -> list[Any]:
    """The suite file's expectations as GX objects; one GX cannot build is a suite error naming the table."""
    # GX's modules are imported where they are used, after quiet_gx: not with this module (~6 s)
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    try:
        return [
            ExpectationConfiguration(
                type=e["type"], kwargs=dict(e.get("kwargs") or {}), meta=dict(e.get("meta") or {})
            ).to_domain_obj()
            for e in expectations
        ]
    except Exception as exc:
        raise SuiteError(
            f"the suite of {table} holds an expectation GX cannot build: {type(exc).__name__}: {exc}",
            hint="check the type and kwargs of hand-added expectations",
        ) from None


class GxRunner:
    """One ephemeral GX context per validation: suite, a pandas data source, optional Data Docs site."""

    def __init__(self, table: str, doc: dict[str, Any], data_docs_dir: Path | None, *, grouped: bool = True) -> None:
        gx = quiet_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig  # after quiet_gx: ~6 s

        self.gx = gx
        self.table = table
        self.ctx = gx.get_context(mode="ephemeral")
        self.ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.docs_dir = data_docs_dir
        if data_docs_dir is not None:
            _add_docs_site(self.ctx, data_docs_dir)
        self.expectations = active_expectations(doc)
        self.suite = self.ctx.suites.add(
            gx.ExpectationSuite(
                name=str(doc.get("name") or table),
                expectations=_domain_expectations(table, self.expectations),
                meta={k: v for k, v in (doc.get("meta") or {}).items()},
            )
        )
        ds = self.ctx.data_sources.add_pandas("hdh")
        self.batch_definition = ds.add_dataframe_asset(table).add_batch_definition_whole_dataframe("batch")

        # GX returns results grouped by domain, not in suite order: map them back by expectation id
        self.position = {str(e.id): i for i, e in enumerate(self.suite.expectations)}
        if len(self.position) != len(self.expectations):
            raise SuiteError(f"the suite of {table} could not be loaded expectation by expectation")
        # the suite runs in column groups (see gxplan): one sub-suite per group, the same expectation ids
        self.groups = (
            gxplan.plan_groups(self.expectations)
            if grouped
            else [gxplan.Group(tuple(range(len(self.expectations))), None)]
        )
        self.group_suites = [self._group_suite(n, g) for n, g in enumerate(self.groups)]
        # bounds checks GX compares as doubles (integer bounds beyond 2**53): recounted exactly per batch
        self.exact_checks = [(i, e["kwargs"]) for i, e in enumerate(self.expectations) if gxplan.inexact_bounds(e)]

    def _group_suite(self, n: int, g: gxplan.Group) -> Any:
        sub = self.gx.ExpectationSuite(
            name=f"{self.suite.name} [{n}]",
            expectations=[copy.copy(self.suite.expectations[i]) for i in g.positions],
        )
        for e, i in zip(sub.expectations, g.positions, strict=True):
            e.id = self.suite.expectations[i].id  # a copy has none: results are mapped back by id
        return sub

    def validate(self, t: pa.Table) -> Any:
        """GX's result for one batch, as one suite result whose ``results`` follow the suite file's order."""
        parts = []
        for g, suite in zip(self.groups, self.group_suites, strict=True):
            frame = gxplan.frame_for(g, t, to_pandas)
            batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
            parts.append(batch.validate(suite, result_format=_RESULT_FORMAT))
        res = parts[0]
        res.results = sorted(
            (r for p in parts for r in p.results), key=lambda r: self.position[str(r.expectation_config.id)]
        )
        for r, e in zip(res.results, self.expectations, strict=True):
            if r.expectation_config.type != e["type"]:  # pragma: no cover - would be a GX contract change
                raise SuiteError(f"GX returned results that do not match the suite of {self.table}")
        for i, kw in self.exact_checks:
            recount(res.results[i], t, kw)
        restate(res)
        res.suite_name = self.suite.name
        return res


def restate(res: Any) -> None:
    """A suite result's success and statistics, from its expectations' results (after merging or edits)."""
    total = len(res.results)
    ok = sum(bool(r.success) for r in res.results)
    res.success = ok == total
    res.statistics = {
        "evaluated_expectations": total,
        "successful_expectations": ok,
        "unsuccessful_expectations": total - ok,
        "success_percent": 100.0 * ok / total if total else 100.0,
    }


def recount(r: Any, t: pa.Table, kw: dict[str, Any]) -> None:
    """Correct GX's result of a bounds check whose integer bound it held as a double, from an exact count."""
    result = r.result or {}
    column = kw.get("column")
    if column not in t.column_names or "unexpected_count" not in result:
        return  # a missing column is GX's to report (an exception), as for every expectation on it
    n = gxplan.exact_unexpected(t.column(column), kw)
    if n is None or n == result["unexpected_count"]:
        return
    nonmissing = int(result.get("element_count") or 0) - int(result.get("missing_count") or 0)
    mostly = float(kw.get("mostly", 1.0))
    result["unexpected_count"] = n
    if nonmissing:
        result["unexpected_percent"] = result["unexpected_percent_nonmissing"] = 100.0 * n / nonmissing
    if result.get("element_count"):
        result["unexpected_percent_total"] = 100.0 * n / int(result["element_count"])
    r.result = result
    r.success = nonmissing == 0 or (nonmissing - n) / nonmissing >= mostly
    log.info("%s: bound beyond 2**53 recounted exactly: %d value(s) outside, GX said otherwise", column, n)
