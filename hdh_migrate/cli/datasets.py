"""``hdh-migrate status | cutover | rollback | recover | delta-sync | audit verify | report verify``.

The command-line twins of the dual-run and cutover DAGs: they call the same steps (``runs/cutover.py``,
``runs/delta_sync.py``) on the same state database (``HDH_MIGRATE_DB_URL``, default SQLite under
``$HDH_MIGRATE_HOME``). Exit codes: 0 success; 1 the operation ran and said no (cutover refused, a check or
signature failed, the ledger is broken, a sync left differences); 2 bad input (unknown dataset, missing
key, credentials). Every refusal prints its reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from hdh_migrate.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, db_option, print_json
from hdh_migrate.errors import ConfigError


# -- status ------------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from hdh_migrate.audit.state import open_state

    state = open_state(args.db)
    if not args.dataset:
        return _print_datasets(state, args.json)
    return _print_dataset(state, state.get(args.dataset), args.json)


def _print_datasets(state: Any, as_json: bool) -> int:
    rows = state.status()
    if as_json:
        print_json([d.to_dict() for d in rows])
        return EXIT_OK
    if not rows:
        print(f"no dataset in {state.url} yet")
        return EXIT_OK
    print(f"{'DATASET':<28} {'STATE':<12} {'AUTHORITATIVE':<13} {'UPDATED (UTC)':<20} SOURCE -> DESTINATION")
    for d in rows:
        print(
            f"{d.name:<28} {d.state:<12} {d.authoritative:<13} {d.updated_at:%Y-%m-%d %H:%M:%S}  "
            f"{d.source_url} -> {d.dest_url}"
        )
    _print_unfinished(state, rows)
    return EXIT_OK


def _print_unfinished(state: Any, rows: list[Any]) -> None:
    """Cutovers that are not final (report missing) and switches that died half-way (routing intent left)."""
    intents = {i.dataset for i in state.pending_intents()}
    for d in rows:
        if d.report_pending:
            print(f"  ! {d.name}: cut over but its signed report is MISSING; run `hdh-migrate recover {d.name}`")
        if d.name in intents:
            print(
                f"  ! {d.name}: a switch or rollback did not finish (routing document may disagree with the "
                f"catalog); run `hdh-migrate recover {d.name}`"
            )


def _print_dataset(state: Any, d: Any, as_json: bool) -> int:
    from hdh_migrate.runs.clearance import preflight
    from hdh_migrate.runs.recovery import pending

    pf = preflight(state, d.name, d.source_fingerprint or "")
    unfinished = pending(state, d.name)
    checks = {k: state.latest_check(d.name, k) for k in ("verify", "validate")}
    history = state.history(d.name)
    if as_json:
        print_json(
            {
                "dataset": d.to_dict(),
                "history": [t.to_dict() for t in history],
                "checks": {k: c.to_dict() if c else None for k, c in checks.items()},
                "cutover_ready_on_last_inventory": pf.ok,
                "reasons": pf.reasons,
                "unfinished": unfinished,
            }
        )
        return EXIT_OK
    _print_catalog(d)
    _print_dataset_unfinished(d.name, unfinished)
    for kind, c in checks.items():
        verdict = f"{'PASS' if c.ok else 'FAIL'} on run {c.run_id} at {c.at:%Y-%m-%d %H:%M:%S} UTC" if c else None
        print(f"{kind:<14} {verdict or 'none recorded'}")
    ready = "ready (on the last recorded inventory; the cutover lists the source again)"
    print(f"cutover        {ready if pf.ok else 'not ready:'}")
    for r in pf.reasons:
        print(f"  - {r}")
    print("history")
    for t in history:
        run = f"  run {t.run_id}" if t.run_id else ""
        print(f"  {t.at:%Y-%m-%d %H:%M:%S} UTC  {t.from_state or '(new)':>11} -> {t.to_state:<11} by {t.actor}{run}")
    return EXIT_OK


def _print_dataset_unfinished(name: str, unfinished: dict[str, Any]) -> None:
    if unfinished["report_pending"]:
        print("report         MISSING: the cutover is not final until its signed report is written")
        print(f"               (run `hdh-migrate recover {name}`; it will be {unfinished['report_url']})")
    for i in unfinished["routing_intents"]:
        print(
            f"unfinished     a {i['to_state']} by run {i['run_id']} ({i['at']}) did not commit: the routing document "
            f"may disagree with the catalog; run `hdh-migrate recover {name}`"
        )


def _print_catalog(d: Any) -> None:
    since = (
        f" since {d.authoritative_since:%Y-%m-%d %H:%M:%S} UTC (run {d.authoritative_run_id})"
        if d.authoritative_since
        else ""
    )
    print(f"dataset        {d.name}")
    print(f"state          {d.state}")
    print(f"authoritative  {d.authoritative}{since}")
    print(f"source         {d.source_url}")
    print(f"destination    {d.dest_url}")
    if d.routing_url:
        print(f"routing        {d.routing_url}")
    if d.report_url:
        print(f"report         {d.report_url}")
    print(f"validation     {'required' if d.validation_required else 'not required'}")
    print(f"last inventory {d.inventory_path or '-'} ({d.source_fingerprint or 'no fingerprint'})")


# -- cutover / rollback -------------------------------------------------------------------------------
NO_KEY = (
    "no report signing key: set {var} or {file_var} (CLI) or the report key Connection (Airflow); a cutover "
    "without its signed report is not allowed"
)


def _signing_key(args: argparse.Namespace) -> Any:
    """The Ed25519 private key (``--key-file``, ``$HDH_MIGRATE_REPORT_KEY_FILE``, ``$<--key-env>``), refused
    if the deployment pins trusted keys and this one is not among them."""
    from hdh_migrate.audit.signing import KEY_ENV, TrustedKeys, load_signing_key, require_trusted

    key = load_signing_key(file=getattr(args, "key_file", None), env_var=args.key_env or KEY_ENV)
    if key is not None:
        require_trusted(key, TrustedKeys.from_env())
    return key


def _run_context(args: argparse.Namespace, kind: str) -> Any:
    from hdh_migrate.runs.context import RunContext, cli_actor, cli_run_id, cli_work_dir

    work = Path(args.work_dir) if getattr(args, "work_dir", None) else cli_work_dir(kind, args.dataset)
    return RunContext(work, cli_run_id(kind), cli_actor(getattr(args, "actor", None)), args.dataset)


def cmd_cutover(args: argparse.Namespace) -> int:
    from hdh_migrate.audit.signing import KEY_ENV, KEY_FILE_ENV
    from hdh_migrate.audit.state import open_state
    from hdh_migrate.runs.clearance import CutoverRefusedError
    from hdh_migrate.runs.cutover import run_cutover
    from hdh_migrate.runs.pair import open_pair
    from hdh_migrate.runs.recovery import recover
    from hdh_migrate.transfer.copier import CopyOptions

    state = open_state(args.db)
    ds = state.get(args.dataset)
    ctx = _run_context(args, "cutover")
    pair = open_pair(ds.source_url, ds.dest_url, workers=args.workers)
    pair.check_access()
    try:
        key = _signing_key(args)
        if key is None:
            raise CutoverRefusedError(args.dataset, [NO_KEY.format(var=args.key_env or KEY_ENV, file_var=KEY_FILE_ENV)])
        recover(state, pair.dest, ctx.sub("recovery"), key=key)
        result = run_cutover(
            state,
            pair,
            ctx,
            key=key,
            sync=not args.no_sync,
            deletions=args.deletions,
            depth=args.depth,
            options=CopyOptions(workers=args.workers),
        )
    except CutoverRefusedError as exc:
        _print_refusal(args, ctx.run_id, exc)
        return EXIT_FAILED
    if args.json:
        print_json(result.to_dict())
        return EXIT_OK
    sw, rep = result.switch or {}, result.report or {}
    print(f"{args.dataset}: CUT OVER to {sw.get('url')} by {ctx.actor} (run {ctx.run_id})")
    print(f"  routing document {sw.get('routing')}")
    print(f"  report           {rep.get('url')}  (local {rep.get('local')})")
    for s in result.synced:
        print(f"  synced first: {s['new']} new, {s['changed']} changed, {s['deleted']} deleted at the source")
    return EXIT_OK


def _print_refusal(args: argparse.Namespace, run_id: str, exc: Any) -> None:
    if args.json:
        print_json({"ok": False, "dataset": args.dataset, "reasons": exc.reasons, "report": exc.report})
        return
    print(f"hdh-migrate: cutover of {args.dataset} REFUSED (run {run_id}):", file=sys.stderr)
    for r in exc.reasons:
        print(f"  - {r}", file=sys.stderr)
    if exc.report:
        print(f"  report: {exc.report}", file=sys.stderr)


def cmd_rollback(args: argparse.Namespace) -> int:
    from hdh_migrate.audit.state import open_state
    from hdh_migrate.runs.cutover import rollback
    from hdh_migrate.runs.pair import open_destination

    state = open_state(args.db)
    ds = state.get(args.dataset)
    dest = open_destination(ds.dest_url)
    dest.check_access()
    ctx = _run_context(args, "rollback")
    result = rollback(state, dest, ctx, reason=args.reason or "")
    if args.json:
        print_json(result)
    else:
        print(
            f"{args.dataset}: ROLLED BACK, Azure is authoritative again ({result['url']}); routing document "
            f"{result['routing']}; nothing was deleted (run {ctx.run_id})"
        )
    return EXIT_OK


def cmd_recover(args: argparse.Namespace) -> int:
    """Finish what a crash left half-done on a dataset: routing document back in line with the catalog, the
    missing signed report of its cutover written."""
    from hdh_migrate.audit.signing import KEY_ENV, KEY_FILE_ENV
    from hdh_migrate.audit.state import open_state
    from hdh_migrate.errors import ConfigError
    from hdh_migrate.runs.pair import open_destination
    from hdh_migrate.runs.recovery import recover

    state = open_state(args.db)
    ds = state.get(args.dataset)
    key = _signing_key(args) if ds.report_pending else None
    if key is None and ds.report_pending:
        raise ConfigError(
            f"{args.dataset}: its cutover's signed report is missing and there is no signing key "
            f"(${args.key_env or KEY_ENV}, ${KEY_FILE_ENV} or --key-file)",
            hint="give the report signing key (the one cutovers sign with) and run this again",
        )
    dest = open_destination(ds.dest_url)
    dest.check_access()
    ctx = _run_context(args, "recover")
    result = recover(state, dest, ctx, key=key)
    if args.json:
        print_json(result)
        return EXIT_OK
    for r in result["routing"]:
        print(
            f"{args.dataset}: the {r['intended']} of run {r['intended_by_run']} never committed; routing document "
            f"rewritten from the catalog ({r['restored_authoritative']} is authoritative)"
        )
    if result["report"]:
        print(f"{args.dataset}: the missing cutover report was written: {result['report']['url']}")
    if not result["routing"] and not result["report"]:
        print(f"{args.dataset}: nothing to recover (routing document and catalog agree; no report missing)")
    return EXIT_OK


# -- delta sync ----------------------------------------------------------------------------------------
def cmd_delta_sync(args: argparse.Namespace) -> int:
    from hdh_migrate.audit.state import open_state
    from hdh_migrate.runs.delta_sync import delta_sync
    from hdh_migrate.runs.pair import open_pair
    from hdh_migrate.transfer.copier import CopyOptions

    state = open_state(args.db)
    ctx = _run_context(args, "delta")
    pair = open_pair(args.source, args.destination, workers=args.workers)
    state.ensure_dataset(args.dataset, str(pair.src), str(pair.dst), actor=ctx.actor, run_id=ctx.run_id)
    record = delta_sync(state, pair, ctx, CopyOptions(workers=args.workers), deletions=args.deletions, depth=args.depth)
    summary = record.to_json()
    if args.json:
        print_json(summary)
    else:
        _print_delta(args.dataset, summary)
    return EXIT_OK if record.ok else EXIT_FAILED


def _print_delta(dataset: str, summary: dict[str, Any]) -> None:
    d, dl = summary["delta"], summary["deleted"]
    c = summary.get("copy") or {}
    print(
        f"{dataset}: {d['new']} new, {d['changed']} changed, {d['unchanged']} unchanged; copied "
        f"{c.get('copied', 0)}, skipped {c.get('skipped', 0)} (already there)"
    )
    print(
        f"  deleted at the source: {dl['count']} ({dl['since_last_listing']} since the last listing); "
        f"mirrored at the destination: {dl['mirrored']}; still at the destination: "
        f"{dl['count'] - dl['mirrored']} (policy {dl['policy']})"
    )
    for key in dl["examples"]:
        print(f"    {key}")
    fx = summary["foreign_extras"]
    if fx["count"]:
        print(
            f"  {fx['count']} object(s) at the destination were not written by hdh-migrate (never deleted): "
            + ", ".join(fx["examples"][:5])
        )
    v = summary.get("verification")
    if v:
        print(
            f"  verification: {'PASS' if v['ok'] else 'FAIL'} ({v['objects_verified']} objects re-read"
            f"{', incremental' if v['incremental'] else ''})" + (f": {v['reason']}" if not v["ok"] else "")
        )
    if summary.get("validation_stale"):
        print(f"  note: {summary['validation_stale']}")
    print(f"  evidence in {summary['work_dir']}")


# -- audit / report verify -----------------------------------------------------------------------------
def cmd_audit_verify(args: argparse.Namespace) -> int:
    from hdh_migrate.audit.state import open_state

    state = open_state(args.db)
    anchors: list[Any] = []
    for path in args.report or []:
        try:
            json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            print(f"hdh-migrate: cannot read {path}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        # the report's anchor is trusted only once its signature and files check out
        v = _verified(args, path)
        if not v.ok:
            _print_invalid(path, v)
            return EXIT_FAILED
        if v.ledger_anchor:
            anchors.append(v.ledger_anchor)
    found = _stored_anchors(state, args)
    v = state.verify_ledger(anchors=anchors + (found.mine if found else []))
    if args.json:
        print_json(v.to_dict() | {"anchors": found.to_dict() if found else None})
    elif v.ok:
        print(
            f"audit ledger OK: {v.records} records, chain intact; head record {v.head_seq} hash {v.head_hash}"
            + (f"; {len(anchors)} report anchor(s) present" if anchors else "")
        )
        _print_anchors(found, v.head_seq)
    else:
        print(f"audit ledger BROKEN at record {v.broken_seq}: {v.reason}", file=sys.stderr)
        print(f"  {v.records} records read from {state.url}", file=sys.stderr)
        if found:
            print(f"  {len(found.mine)} anchor(s) read from {', '.join(found.stores)}", file=sys.stderr)
    return EXIT_OK if v.ok else EXIT_FAILED


def _stored_anchors(state: Any, args: argparse.Namespace) -> Any:
    """The anchor documents of the destinations the database knows (or of --anchors-from); None if skipped.

    By default a destination that cannot be reached is skipped with a warning (the chain is still checked);
    a store named with --anchors-from must answer."""
    from hdh_migrate.audit.anchors import destination_buckets, read_anchors
    from hdh_migrate.errors import HdhMigrateError
    from hdh_migrate.runs.pair import open_destination

    if args.no_anchors:
        return None
    named = bool(args.anchors_from)
    stores = []
    for url in args.anchors_from or destination_buckets(state):
        try:
            store = open_destination(url)
            store.check_access("")
            stores.append(store)
        except HdhMigrateError as exc:
            if named:
                raise
            print(f"hdh-migrate: warning: anchors at {url} not checked: {exc}", file=sys.stderr)
    return read_anchors(state, stores)


def _print_anchors(found: Any, head_seq: int | None) -> None:
    if found is None:
        print("  anchors at the destinations: not checked (--no-anchors)")
        return
    newest = found.newest
    if newest is None:
        print(f"  anchors: none found in {', '.join(found.stores) or 'no store'}")
    else:
        behind = (head_seq or 0) - newest.seq
        print(
            f"  {len(found.mine)} anchor(s) checked in {', '.join(found.stores)}; newest: record {newest.seq} "
            f"written {newest.at}" + (f"; {behind} record(s) after it not anchored yet" if behind > 0 else "")
        )
    if found.others:
        print(f"  {found.others} anchor(s) of other ledgers (another database) not checked")
    for url in found.unreadable:
        print(f"  unreadable anchor document: {url}")


def _verified(args: argparse.Namespace, path: str) -> Any:
    """verify_report with the trusted public keys (``--public-key``, else ``$HDH_MIGRATE_TRUSTED_KEYS``)
    and, for reports of the old kind only, the shared HMAC secret (``--key-env``)."""
    from hdh_migrate.audit.signing import KEY_ENV, TrustedKeys, verify_report

    trusted = TrustedKeys.from_paths(args.public_key) if args.public_key else TrustedKeys.from_env()
    secret = os.environ.get(args.key_env or KEY_ENV) or ""
    hmac_key = secret.encode("utf-8") if secret and not secret.lstrip().startswith("-----BEGIN") else None
    return verify_report(path, trusted=trusted, hmac_key=hmac_key)


def _print_invalid(path: str, v: Any) -> None:
    print(f"report INVALID: {path}", file=sys.stderr)
    for p in v.problems:
        print(f"  - {p}", file=sys.stderr)


def cmd_report_verify(args: argparse.Namespace) -> int:
    v = _verified(args, args.report)
    if not v.ok:
        _print_invalid(args.report, v)
        return EXIT_FAILED
    if v.old_kind:
        print(
            f"report OK, of the old kind: {args.report} ({v.dataset}, decision {v.outcome}) is signed with this "
            "shared HMAC key and every attached file matches its hash; whoever holds that key could also have "
            "written it (reports since 2026-12 are signed with Ed25519)"
        )
    else:
        print(
            f"report OK: {args.report} ({v.dataset}, decision {v.outcome}) is signed with the trusted Ed25519 key "
            f"{v.key_id}; the report and all {v.files_checked} files of its bundle match their hashes"
        )
    return EXIT_OK


def cmd_report_keygen(args: argparse.Namespace) -> int:
    """A new Ed25519 key pair: the private key (0600, never printed) and the public key to pin and publish."""
    from hdh_migrate.audit.signing import generate_key_pair, parse_signing_key

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    private, public = out / "report-signing-key.pem", out / "report-signing-key.pub.pem"
    for p in (private, public):
        if p.exists():
            raise ConfigError(f"{p} already exists", hint="choose another --out folder: a key is never overwritten")
    pem, pub = generate_key_pair()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public.write_bytes(pub)
    kid = parse_signing_key(pem, str(private)).key_id
    print(f"private key  {private} (0600: keep it secret; mount it read-only where reports are signed)")
    print(f"public key   {public} (pin it in HDH_MIGRATE_TRUSTED_KEYS; give it to auditors)")
    print(f"key id       {kid}")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------------------
def _sync_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--deletions",
        choices=("report", "mirror"),
        default="report",
        help="blobs deleted at the source: report them (default) or delete them at the destination",
    )
    p.add_argument(
        "--depth",
        choices=("quick", "full", "both"),
        default="full",
        help="verification depth of what is synced (default full)",
    )
    p.add_argument("--workers", type=int, default=8, help="parallel transfers (default 8)")
    p.add_argument("--work-dir", help="where the run's evidence goes (default $HDH_MIGRATE_HOME/runs/...)")
    p.add_argument("--actor", help="who runs this, for the audit trail (default $HDH_MIGRATE_ACTOR or login)")
    p.add_argument("--json", action="store_true")
    db_option(p)


def _key_option(p: argparse.ArgumentParser, what: str) -> None:
    # default None: audit/signing.py's KEY_ENV decides (HDH_MIGRATE_REPORT_KEY)
    p.add_argument("--key-env", help=f"variable holding {what} (default HDH_MIGRATE_REPORT_KEY)")


def _public_key_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--public-key",
        action="append",
        metavar="KEY.pem",
        help="a trusted Ed25519 public key (PEM file or folder of them); repeatable, for rotated keys "
        "(default: $HDH_MIGRATE_TRUSTED_KEYS)",
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = sub.add_parser("status", help="datasets' migration state, checks, catalog and history")
    s.add_argument("dataset", nargs="?", help="one dataset (its details and history)")
    s.add_argument("--json", action="store_true")
    db_option(s)
    s.set_defaults(func=cmd_status)
    _register_cutover(sub)
    _register_delta_sync(sub)
    _register_audit(sub)


def _register_cutover(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("cutover", help="switch a dataset to the sovereign store, if every check is green")
    c.add_argument("dataset")
    c.add_argument(
        "--no-sync",
        action="store_true",
        help="if the source changed since verification, refuse instead of syncing and re-verifying",
    )
    _key_option(c, "the report signing key: an Ed25519 private key in PEM")
    c.add_argument("--key-file", help="file holding the report signing key (default $HDH_MIGRATE_REPORT_KEY_FILE)")
    _sync_options(c)
    c.set_defaults(func=cmd_cutover)
    r = sub.add_parser("rollback", help="point a cut-over dataset back at Azure (nothing is deleted)")
    r.add_argument("dataset")
    r.add_argument("--reason", help="why, for the audit trail")
    r.add_argument("--actor", help="who runs this, for the audit trail")
    r.add_argument("--json", action="store_true")
    db_option(r)
    r.set_defaults(func=cmd_rollback)
    rc = sub.add_parser(
        "recover",
        help="after a crash: routing document back in line with the catalog, a cutover's missing report written",
    )
    rc.add_argument("dataset")
    _key_option(rc, "the report signing key: an Ed25519 private key in PEM")
    rc.add_argument("--key-file", help="file holding the report signing key (default $HDH_MIGRATE_REPORT_KEY_FILE)")
    rc.add_argument("--actor", help="who runs this, for the audit trail")
    rc.add_argument("--work-dir", help="where the recovered report goes (default $HDH_MIGRATE_HOME/runs/...)")
    rc.add_argument("--json", action="store_true")
    db_option(rc)
    rc.set_defaults(func=cmd_recover)


def _register_delta_sync(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("delta-sync", help="copy only the blobs new or changed since the last listing")
    d.add_argument("source", help="azure://CONTAINER/PREFIX")
    d.add_argument("destination", help="s3://BUCKET/PREFIX")
    d.add_argument("--dataset", required=True, help="dataset name (registered if new)")
    _sync_options(d)
    d.set_defaults(func=cmd_delta_sync)


def _register_audit(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    a = sub.add_parser("audit", help="the audit ledger")
    asub = a.add_subparsers(dest="audit_cmd", required=True, metavar="ACTION")
    av = asub.add_parser(
        "verify", help="check the ledger's hash chain (exit 1 if any record was edited, removed or reordered)"
    )
    av.add_argument(
        "--report",
        action="append",
        help="a signed report whose ledger head must still be in the ledger (detects records removed from the "
        "end); repeatable",
    )
    av.add_argument(
        "--anchors-from",
        action="append",
        metavar="s3://BUCKET",
        help="read the ledger anchors from this store only (repeatable; default: every destination the database "
        "knows, skipped with a warning when unreachable)",
    )
    av.add_argument(
        "--no-anchors",
        action="store_true",
        help="do not read the ledger anchors at the destinations (the chain alone is checked)",
    )
    _public_key_option(av)
    _key_option(av, "the shared secret of reports of the old kind (HMAC)")
    av.add_argument("--json", action="store_true")
    db_option(av)
    av.set_defaults(func=cmd_audit_verify)
    rp = sub.add_parser("report", help="cutover reports")
    rsub = rp.add_subparsers(dest="report_cmd", required=True, metavar="ACTION")
    rv = rsub.add_parser("verify", help="check a report's signature and the hashes of every file of its bundle")
    rv.add_argument("report", help="report.json (the rest of its bundle must sit next to it)")
    _public_key_option(rv)
    _key_option(rv, "the shared secret of reports of the old kind (HMAC)")
    rv.set_defaults(func=cmd_report_verify)
    kg = rsub.add_parser("keygen", help="make an Ed25519 key pair to sign reports with")
    kg.add_argument("--out", required=True, help="folder for report-signing-key.pem and report-signing-key.pub.pem")
    kg.set_defaults(func=cmd_report_keygen)
