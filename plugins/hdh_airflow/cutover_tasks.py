"""Task bodies of the dual-run and cutover DAGs (``hdh_delta_sync``, ``hdh_cutover``, ``hdh_rollback``).

Thin, like ``tasks.py``: Params and small XComs -> one call of ``hdh_migrate.runs`` (``delta_sync``,
``cutover``: the same steps ``hdh-migrate cutover`` runs in sequence) -> errors mapped by ``airflow_errors``:
a refused cutover or transition is permanent (the task fails at once, with every reason in its log and in
the ledger); a store that is unreachable is transient (Airflow retries).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from hdh_airflow.context import copy_options, destination, run_context, stores
from hdh_airflow.errors import airflow_errors
from hdh_migrate.audit.lifecycle import CUT_OVER, PLANNED
from hdh_migrate.audit.signing import (
    KEY_FILE_ENV,
    SigningKey,
    TrustedKeys,
    load_signing_key,
    parse_signing_key,
    require_trusted,
)
from hdh_migrate.audit.state import StateStore, open_state
from hdh_migrate.errors import ConfigError
from hdh_migrate.runs import cutover
from hdh_migrate.runs.clearance import FreezeCheck
from hdh_migrate.runs.clearance import clearance as check_clearance
from hdh_migrate.runs.delta_sync import SYNC_FOLDER
from hdh_migrate.runs.delta_sync import delta_sync as run_delta_sync
from hdh_migrate.runs.pair import StorePair
from hdh_migrate.runs.recovery import recover

log = logging.getLogger("hdh_migrate.airflow")
#: the deployment's setting naming the signing key's Connection (the trigger Param may only repeat it)
KEY_CONN_ENV = "HDH_MIGRATE_REPORT_KEY_CONN"
DEFAULT_KEY_CONN = "hdh_report_key"


def _state() -> StateStore:
    with airflow_errors("opening the state database"):
        return open_state()


def _stores(params: dict[str, Any], st: StateStore, dataset: str, workers: int = 8) -> StorePair:
    with airflow_errors(f"opening the stores of {dataset}"):
        ds = st.get(dataset)
        return stores(params, ds.source_url, ds.dest_url, workers=workers)


def _destination(params: dict[str, Any], st: StateStore, dataset: str) -> Any:
    with airflow_errors(f"opening the destination of {dataset}"):
        return destination(params, st.get(dataset).dest_url)


def report_key(params: dict[str, Any]) -> SigningKey:
    """The Ed25519 signing key, chosen by the deployment, never by whoever triggers: the password (PEM) of
    the Connection named by $HDH_MIGRATE_REPORT_KEY_CONN (default ``hdh_report_key``, which may come from a
    secrets backend), else $HDH_MIGRATE_REPORT_KEY_FILE (a read-only mount), else $HDH_MIGRATE_REPORT_KEY.
    Refused if $HDH_MIGRATE_TRUSTED_KEYS pins keys and it is not one. Fails the task (permanently) when
    there is none: no unsigned report, nothing switched."""
    conn_id = os.environ.get(KEY_CONN_ENV) or DEFAULT_KEY_CONN
    asked = params.get("report_key_conn_id")
    if asked and asked != conn_id:
        raise AirflowFailException(
            f"[report_key] the Param report_key_conn_id asks for the Connection {asked!r}, but the deployment signs "
            f"reports with {conn_id!r} ({KEY_CONN_ENV}): whoever triggers a cutover does not choose the key that "
            f"signs its report; leave the Param at {conn_id!r}; nothing was switched"
        )
    with airflow_errors("loading the report signing key"):
        try:
            pem = BaseHook.get_connection(conn_id).password
        except AirflowNotFoundException:
            pem = None
        key = parse_signing_key(pem, f"the Connection {conn_id!r}") if pem else load_signing_key()
        if key is not None:
            require_trusted(key, TrustedKeys.from_env())
    if key is None:
        raise AirflowFailException(
            f"[report_key] no report signing key: create the Connection {conn_id!r} (type generic, the Ed25519 "
            f"private key's PEM in its password) or mount it and set {KEY_FILE_ENV} in the workers' environment "
            "(`hdh-migrate report keygen` makes one); nothing was switched"
        )
    return key


# -- hdh_delta_sync -------------------------------------------------------------------------------------
def datasets_in_dual_run(params: dict[str, Any]) -> list[str]:
    """The Param's dataset, or every dataset that was copied and is not cut over (the scheduled case)."""
    st = _state()
    if params.get("dataset"):
        with airflow_errors("reading the dataset"):
            st.get(params["dataset"])
        return [params["dataset"]]
    names = [d.name for d in st.status() if d.state not in (CUT_OVER, PLANNED)]
    log.info("datasets in dual run: %s", names or "none")
    return names


def sync(params: dict[str, Any], dataset: str, run_id: str, actor: str) -> dict[str, Any]:
    st = _state()
    with airflow_errors("checking the Params"):
        options = copy_options(
            {"part_size_mib": params.get("part_size_mib", 8), "max_parallel": params.get("max_parallel", 8)}
        )
    pair = _stores(params, st, dataset, options.workers)
    ctx = run_context(dataset, run_id, actor)
    with airflow_errors(f"delta sync of {dataset}"):
        record = run_delta_sync(
            st,
            pair,
            ctx.sub(SYNC_FOLDER),
            options,
            deletions=params.get("deletions") or "report",
            depth=params.get("verify") or "full",
        )
    return _sync_result(dataset, record.to_json())


def _sync_result(dataset: str, s: dict[str, Any]) -> dict[str, Any]:
    d, deleted = s["delta"], s["deleted"]
    log.info(
        "%s: %d new, %d changed, %d deleted at the source (%s), %d unchanged",
        dataset,
        d["new"],
        d["changed"],
        deleted["count"],
        deleted["policy"],
        d["unchanged"],
    )
    for key in deleted["examples"]:
        log.info(
            "  deleted at the source, %s at the destination: %s",
            "deleted" if deleted["policy"] == "mirror" else "kept",
            key,
        )
    summary = os.path.join(s["work_dir"], "summary.json")
    result = {
        "dataset": dataset,
        "new": d["new"],
        "changed": d["changed"],
        "deleted": deleted["count"],
        "mirrored": deleted["mirrored"],
        "copied": (s.get("copy") or {}).get("copied", 0),
        "ok": s["ok"],
        "summary": summary,
        "verification": s.get("verification"),
    }
    if not s["ok"]:
        v = s.get("verification") or {}
        raise AirflowFailException(
            f"[verification_failed] {dataset}: the delta sync left the destination different "
            f"from the source: {v.get('reason', 'see the summary')}; {summary}"
        )
    return result


# -- hdh_cutover ----------------------------------------------------------------------------------------
def freeze(params: dict[str, Any], run_id: str, actor: str) -> dict[str, Any]:
    """The recovery pass first (a routing intent left behind, a cutover's missing report), then the freeze
    check. Needs the report key: every outcome of the cutover DAG is a signed report."""
    st = _state()
    dataset = params["dataset"]
    pair, ctx = _stores(params, st, dataset), run_context(dataset, run_id, actor)
    key = report_key(params)
    with airflow_errors(f"finishing what a previous cutover or rollback of {dataset} left half-done"):
        recover(st, pair.dest, ctx.sub("recovery"), key=key)
    with airflow_errors(f"listing {dataset} again (freeze check)"):
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        fz = cutover.freeze_check(st, pair, ctx)
        needed = cutover.sync_needed(st, dataset, fz, sync=bool(params.get("sync", True)))
    return fz.to_dict() | {"sync_needed": needed}


def clearance(
    params: dict[str, Any], run_id: str, actor: str, fz: dict[str, Any], synced: bool, started: datetime
) -> dict[str, Any]:
    """All checks green for the current source state, else a recorded, reported refusal."""
    st = _state()
    dataset = params["dataset"]
    pair, ctx = _stores(params, st, dataset), run_context(dataset, run_id, actor)
    freezes = [FreezeCheck.from_dict(fz)]
    with airflow_errors("checking the cutover's preconditions"):
        if synced:
            freezes.append(cutover.freeze_check(st, pair, ctx, attempt=2))
        pf = check_clearance(st, dataset, freezes, synced=synced)
    if pf.ok:
        log.info("preflight of %s: all checks green for fingerprint %s", dataset, pf.fingerprint)
        return {"fingerprint": pf.fingerprint, "freeze": [f.to_dict() for f in freezes], "synced": synced}
    key = report_key(params)
    with airflow_errors("refusing the cutover"):
        raise cutover.refuse(st, pair.dest, ctx, pf, freezes, key=key, started=started)


def switch(params: dict[str, Any], run_id: str, actor: str, cleared: dict[str, Any]) -> dict[str, Any]:
    report_key(params)  # fail before switching if the report could not be signed
    st = _state()
    dataset = params["dataset"]
    dest, ctx = _destination(params, st, dataset), run_context(dataset, run_id, actor)
    freezes = [FreezeCheck.from_dict(f) for f in cleared["freeze"]]
    with airflow_errors(f"switching {dataset}"):
        return cutover.switch(st, dest, ctx, freezes, synced=cleared["synced"])


def report(params: dict[str, Any], run_id: str, actor: str, sw: dict[str, Any], started: datetime) -> dict[str, Any]:
    key = report_key(params)
    st = _state()
    dataset = params["dataset"]
    dest, ctx = _destination(params, st, dataset), run_context(dataset, run_id, actor)
    with airflow_errors("writing the cutover report"):
        return cutover.report_cutover(st, dest, ctx, sw, key=key, started=started)


# -- hdh_rollback ---------------------------------------------------------------------------------------
def rollback(params: dict[str, Any], run_id: str, actor: str) -> dict[str, Any]:
    st = _state()
    dataset = params["dataset"]
    if not (params.get("reason") or "").strip():
        with airflow_errors("checking the Params"):
            raise ConfigError("a rollback needs a reason", hint="say why in the 'reason' Param; it goes to the ledger")
    dest, ctx = _destination(params, st, dataset), run_context(dataset, run_id, actor)
    with airflow_errors(f"rolling {dataset} back"):
        return cutover.rollback(st, dest, ctx, reason=params["reason"])


__all__ = ["clearance", "datasets_in_dual_run", "freeze", "report", "report_key", "rollback", "switch", "sync"]
