"""``hdh-migrate rig up | down | env | status``: the local servers of the tests and the demo.

The harness (``dev/rig.py``, with subprocess) is imported by these verbs only: every other command builds
this parser too, and pays ~10 ms for each module it imports at start (measured with -X importtime)."""

from __future__ import annotations

import argparse
import shlex
import sys

from hdh_migrate.cli.common import EXIT_FAILED, EXIT_OK


def cmd_rig(args: argparse.Namespace) -> int:
    return {"up": _up, "down": _down, "env": _env, "status": _status}[args.rig_cmd](args)


def _up(args: argparse.Namespace) -> int:
    # the storage SDKs only for this verb (see cli/__init__.py)
    from hdh_migrate.dev import rig
    from hdh_migrate.locations import Location
    from hdh_migrate.stores import S3Store, open_store
    from hdh_migrate.stores.settings import s3_settings_from_env

    rig.up()
    settings = s3_settings_from_env(rig.env())
    for bucket in args.bucket or []:
        store = open_store(Location("s3", bucket, ""), s3=settings)
        assert isinstance(store, S3Store)  # bucket management is the rig's, on the real S3 backend only
        store.create_bucket(object_lock=args.object_lock)
        print(f"rig: bucket s3://{bucket}/ ready", file=sys.stderr)
    return EXIT_OK


def _down(args: argparse.Namespace) -> int:
    from hdh_migrate.dev import rig

    rig.down(purge=args.purge)
    return EXIT_OK


def _env(args: argparse.Namespace) -> int:
    from hdh_migrate.dev import rig

    for k, v in rig.env(reader=args.reader).items():
        print(f"export {k}={shlex.quote(v)}")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from hdh_migrate.dev import rig

    st = rig.status()
    for name, s in st.items():
        state = "up" if s["listening"] else "down"
        owner = f"pid {s['pid']}" if s["alive"] else "started elsewhere" if s["listening"] else "-"
        print(f"{name:10} {state:5} port {s['port']} ({owner})")
    return EXIT_OK if all(s["listening"] for s in st.values()) else EXIT_FAILED


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser("rig", help="local Azurite + SeaweedFS servers on 127.0.0.1 for tests and the demo")
    rs = r.add_subparsers(dest="rig_cmd", required=True, metavar="ACTION")
    up = rs.add_parser("up", help="start both servers (idempotent)")
    up.add_argument("--bucket", action="append", help="also create this bucket on the S3 side (repeatable)")
    up.add_argument("--object-lock", action="store_true", help="create the buckets with Object Lock enabled")
    down = rs.add_parser("down", help="stop both servers")
    down.add_argument("--purge", action="store_true", help="also delete their data")
    env = rs.add_parser("env", help='print the settings to export: eval "$(hdh-migrate rig env)"')
    env.add_argument("--reader", action="store_true", help="use the read-only S3 key (for access tests)")
    rs.add_parser("status", help="show whether the servers run")
    r.set_defaults(func=cmd_rig)
