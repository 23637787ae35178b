"""Task bodies of the dual-run and cutover DAGs (hdh_delta_sync, hdh_cutover, hdh_rollback).

Thin, like ``tasks.py``: read Params and small XComs (fingerprints, counts, paths), open the stores from
Connections and the state database from ``HDH_MIGRATE_DB_URL``, call ``hdh_migrate.delta`` /
``hdh_migrate.cutover`` / ``hdh_migrate.report``, and turn typed errors into Airflow semantics through
``airflow_errors``: a refused cutover or transition is permanent (the task fails at once, with every reason
in its log and in the ledger); a store that is unreachable is transient (Airflow retries).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from hdh_airflow.connections import azure_settings_from_connection, s3_settings_from_connection
from hdh_airflow.tasks import airflow_errors, options_from_params, run_dir
from hdh_migrate.audit.state import CUT_OVER, PLANNED, StateStore, open_state
from hdh_migrate.errors import ConfigError
from hdh_migrate.locations import Location, parse_location
from hdh_migrate.runs.migration import open_pair, pool_size
from hdh_migrate.stores import AzureBlobStore, S3Store

log = logging.getLogger("hdh_migrate.airflow")


def actor_of(ctx: dict[str, Any]) -> str:
    """The person (or API client) who triggered the run; the run type for scheduled runs."""
    run = ctx.get("dag_run")
    user = getattr(run, "triggering_user_name", None)
    if user:
        return str(user)
    return f"airflow:{getattr(run, 'run_type', None) or 'unknown'}"


def state() -> StateStore:
    with airflow_errors("opening the state database"):
        return open_state()


def _stores(params: dict[str, Any], st: StateStore, dataset: str, *, source: bool = True,
            workers: int = 8) -> tuple[Location, Location, AzureBlobStore | None, S3Store]:
    with airflow_errors(f"opening the stores of {dataset}"):
        ds = st.get(dataset)
        s3_settings = s3_settings_from_connection(params["dest_conn_id"])
        if source:
            return open_pair(ds.source_url, ds.dest_url, azure=azure_settings_from_connection(params["source_conn_id"]),
                             s3=s3_settings, workers=workers, check=False)
        dst = parse_location(ds.dest_url, expect="s3")
        return parse_location(ds.source_url, expect="azure"), dst, None, S3Store(
            s3_settings, dst.container, max_connections=pool_size(workers))


def report_key(params: dict[str, Any]) -> bytes:
    """The HMAC key: the password of the report key Connection, else $HDH_MIGRATE_REPORT_KEY (a secret
    injected by the deployment). Fails the task (permanently) when neither exists: no unsigned report."""
    from airflow.sdk import BaseHook

    conn_id = params.get("report_key_conn_id") or "hdh_report_key"
    try:
        password = BaseHook.get_connection(conn_id).password
        if password:
            return password.encode("utf-8")
    except AirflowNotFoundException:
        pass
    if os.environ.get("HDH_MIGRATE_REPORT_KEY"):
        return os.environ["HDH_MIGRATE_REPORT_KEY"].encode("utf-8")
    raise AirflowFailException(
        f"[report_key] no report signing key: create the Connection {conn_id!r} (type generic, the key in its "
        "password) or set HDH_MIGRATE_REPORT_KEY in the workers' environment; nothing was switched")


def _options(params: dict[str, Any]) -> Any:
    return options_from_params({"part_size_mib": params.get("part_size_mib", 8),
                                "max_parallel": params.get("max_parallel", 8), "dry_run": False})


# -- hdh_delta_sync -------------------------------------------------------------------------------------
def datasets_in_dual_run(params: dict[str, Any]) -> list[str]:
    """The Param's dataset, or every dataset that was copied and is not cut over (the scheduled case)."""
    st = state()
    if params.get("dataset"):
        with airflow_errors("reading the dataset"):
            st.get(params["dataset"])
        return [params["dataset"]]
    names = [d.name for d in st.status() if d.state not in (CUT_OVER, PLANNED)]
    log.info("datasets in dual run: %s", names or "none")
    return names


def delta_sync(params: dict[str, Any], dataset: str, run_id: str, actor: str) -> dict[str, Any]:
    from hdh_migrate.runs.delta_sync import run_delta_sync

    st = state()
    options = _options(params)
    src, dst, source, dest = _stores(params, st, dataset, workers=options.workers)
    with airflow_errors(f"delta sync of {dataset}"):
        s = run_delta_sync(st, dataset, source, dest, src, dst, options=options,
                           deletions=params.get("deletions") or "report", depth=params.get("verify") or "full",
                           actor=actor, run_id=run_id, work_dir=run_dir(dataset, run_id) / "delta-sync")
    d = s["delta"]
    log.info("%s: %d new, %d changed, %d deleted at the source (%s), %d unchanged", dataset, d["new"], d["changed"],
             s["deleted"]["count"], s["deleted"]["policy"], d["unchanged"])
    for key in s["deleted"]["examples"]:
        log.info("  deleted at the source, %s at the destination: %s", "deleted" if s["deleted"]["policy"] == "mirror"
                 else "kept", key)
    result = {"dataset": dataset, "new": d["new"], "changed": d["changed"], "deleted": s["deleted"]["count"],
              "mirrored": s["deleted"]["mirrored"], "copied": (s.get("copy") or {}).get("copied", 0),
              "ok": s["ok"], "summary": str(run_dir(dataset, run_id) / "delta-sync" / "summary.json"),
              "verification": s.get("verification")}
    if not s["ok"]:
        v = s.get("verification") or {}
        raise AirflowFailException(f"[verification_failed] {dataset}: the delta sync left the destination different "
                                   f"from the source: {v.get('reason', 'see the summary')}; {result['summary']}")
    return result


# -- hdh_cutover ----------------------------------------------------------------------------------------
def freeze(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    from hdh_migrate.runs.cutover import freeze_check

    st = state()
    dataset = params["dataset"]
    src, _dst, source, _dest = _stores(params, st, dataset)
    work = run_dir(dataset, run_id)
    work.mkdir(parents=True, exist_ok=True)
    with airflow_errors(f"listing {src} again (freeze check)"):
        fz = freeze_check(st, dataset, source, src, inventory_path=work / "freeze-inventory.parquet")
    log.info("freeze check of %s: %s objects, fingerprint %s; last verification on %s: %s", dataset,
             f"{fz.objects:,}", fz.fingerprint, fz.verified_fingerprint, "CHANGED" if fz.changed else "unchanged")
    sync = bool(params.get("sync", True)) and fz.changed and st.get(dataset).state != CUT_OVER
    return fz.to_dict() | {"sync_needed": sync}


def preflight(params: dict[str, Any], run_id: str, actor: str, fz: dict[str, Any],
              synced: dict[str, Any] | None, started: str) -> dict[str, Any]:
    """All checks green for the current source state, else a recorded, reported refusal."""
    from hdh_migrate.audit import report as report_mod
    from hdh_migrate.runs.cutover import audit_prefix, freeze_check
    from hdh_migrate.runs.cutover import preflight as check

    st = state()
    dataset = params["dataset"]
    freezes = [fz]
    fingerprint = fz["fingerprint"]
    if synced:
        src, _dst, source, _dest = _stores(params, st, dataset)
        with airflow_errors("listing the source again after the sync"):
            fz2 = freeze_check(st, dataset, source, src,
                               inventory_path=run_dir(dataset, run_id) / "freeze-inventory-2.parquet")
        freezes.append(fz2.to_dict())
        fingerprint = fz2.fingerprint
    with airflow_errors("checking the cutover's preconditions"):
        pf = check(st, dataset, fingerprint)
    if synced and freezes[-1]["changed"]:
        pf.reasons.append("the source kept changing during the cutover (it changed again after the delta sync): "
                          "freeze writes at the source, then trigger the cutover again")
    if not params.get("sync", True) and fz["changed"]:
        log.info("sync disabled by the Params: a changed source refuses the cutover")
    freezes = [{k: v for k, v in f.items() if k != "sync_needed"} for f in freezes]
    if pf.ok:
        log.info("preflight of %s: all checks green for fingerprint %s", dataset, fingerprint)
        return {"fingerprint": fingerprint, "freeze": freezes}
    key = report_key(params)
    _src, _dst, _source, dest = _stores(params, st, dataset, source=False)
    st.append_ledger(kind="cutover_refused", dataset=dataset, actor=actor, run_id=run_id,
                     payload={"reasons": pf.reasons, "fingerprint": fingerprint})
    with airflow_errors("writing the refusal report"):
        rep = report_mod.produce(st, dataset, dest, decision={"outcome": "refused", "reasons": pf.reasons},
                                 actor=actor, run_id=run_id, started=datetime.fromisoformat(started),
                                 work_dir=run_dir(dataset, run_id), key=key,
                                 prefix=audit_prefix(dataset, datetime.now(UTC)), freeze=freezes, preflight=pf)
    st.record_run(dataset, run_id, "cutover", actor=actor, ok=False, started=datetime.fromisoformat(started),
                  summary={"outcome": "refused", "reasons": pf.reasons, "report": rep["url"]})
    reasons = "; ".join(pf.reasons)
    raise AirflowFailException(f"[cutover_refused] cutover of {dataset} refused: {reasons}. Nothing was switched; "
                               f"report {rep['url']}")


def switch(params: dict[str, Any], run_id: str, actor: str, pf_result: dict[str, Any]) -> dict[str, Any]:
    from hdh_migrate.runs.cutover import audit_prefix
    from hdh_migrate.runs.cutover import preflight as check
    from hdh_migrate.runs.cutover import switch as do_switch

    report_key(params)  # fail before switching if the report could not be signed
    st = state()
    dataset = params["dataset"]
    _src, _dst, _source, dest = _stores(params, st, dataset, source=False)
    prefix = audit_prefix(dataset, datetime.now(UTC))
    with airflow_errors(f"switching {dataset}"):
        pf = check(st, dataset, pf_result["fingerprint"])  # again, inside this task: nothing moved meanwhile
        sw = do_switch(st, dataset, dest, actor=actor, run_id=run_id, pf=pf,
                       report_url=f"s3://{dest.container}/{prefix}report.json")
    return sw | {"prefix": prefix, "fingerprint": pf_result["fingerprint"], "freeze": pf_result["freeze"]}


def report(params: dict[str, Any], run_id: str, actor: str, sw: dict[str, Any], started: str) -> dict[str, Any]:
    from hdh_migrate.audit import report as report_mod
    from hdh_migrate.runs.cutover import preflight as check

    key = report_key(params)
    st = state()
    dataset = params["dataset"]
    _src, _dst, _source, dest = _stores(params, st, dataset, source=False)
    pf = check(st, dataset, sw["fingerprint"])  # for its checks; its reasons now say "already cut over"
    with airflow_errors("writing the cutover report"):
        rep = report_mod.produce(st, dataset, dest, decision={"outcome": "cut_over", "reasons": [], "switch": sw},
                                 actor=actor, run_id=run_id, started=datetime.fromisoformat(started),
                                 work_dir=run_dir(dataset, run_id), key=key, prefix=sw["prefix"],
                                 freeze=sw["freeze"], preflight=pf)
    st.record_run(dataset, run_id, "cutover", actor=actor, ok=True, started=datetime.fromisoformat(started),
                  summary={"outcome": "cut_over", "routing": sw["routing"], "report": rep["url"]})
    log.info("cutover report of %s: %s (local %s)", dataset, rep["url"], rep["local"])
    return rep


# -- hdh_rollback ---------------------------------------------------------------------------------------
def rollback(params: dict[str, Any], run_id: str, actor: str) -> dict[str, Any]:
    from hdh_migrate.runs.cutover import rollback as do_rollback

    st = state()
    dataset = params["dataset"]
    if not (params.get("reason") or "").strip():
        with airflow_errors("checking the Params"):
            raise ConfigError("a rollback needs a reason", hint="say why in the 'reason' Param; it goes to the ledger")
    _src, _dst, _source, dest = _stores(params, st, dataset, source=False)
    with airflow_errors(f"rolling {dataset} back"):
        return do_rollback(st, dataset, dest, actor=actor, run_id=run_id, reason=params["reason"])


__all__ = ["actor_of", "datasets_in_dual_run", "delta_sync", "freeze", "preflight", "report", "rollback", "switch"]
