"""A distributed Airflow 3 deployment on one machine: CeleryExecutor, PostgreSQL, Redis, several workers.

The Celery flavour of :mod:`hdh_migrate.dev.airflow_local` (whose functions it reuses; nothing here imports
Airflow). What :func:`start_celery` runs, everything bound to 127.0.0.1:

* a fresh PostgreSQL database for Airflow's metadata (and the Celery result backend), and a second one
  for the migration state database (``HDH_MIGRATE_DB_URL``), both created with ``CREATE DATABASE`` as
  user ``postgres`` (trust auth on 127.0.0.1:5432) and dropped by :meth:`CeleryAirflow.stop`;
* a Redis database number of its own (an empty one, claimed with a key) as the Celery broker, and a
  queue name of its own (``[operators] default_queue``), so it never takes or disturbs anyone's messages;
* the core components of :func:`airflow_local.start` (``db migrate``, api-server, scheduler,
  dag-processor, triggerer), with ``CeleryExecutor``;
* N ``airflow celery worker --celery-hostname wN@%h --skip-serve-logs`` processes, **each in its own
  session**, so one can be killed (SIGKILL, its task processes included) like a machine that dies.

Each worker reports itself in the task instances it runs: ``[core] hostname_callable`` points the workers at
:func:`worker_hostname`, which answers ``wN@<fqdn>``, so the REST API's task instance ``hostname`` says
which worker ran which try.

Services: PostgreSQL and Redis are expected as already-started services. :func:`ensure_services` starts a
stopped one the documented way (``pg_ctlcluster --skip-systemctl-redirect <version> main start``;
``redis-server --daemonize yes --bind 127.0.0.1 -::1 ...``) and returns a reason when they cannot be had,
so that tests skip visibly.

    .venv/bin/python -m hdh_migrate.dev.airflow_celery check          # are the services there?
    .venv/bin/python -m hdh_migrate.dev.airflow_celery start HOME     # start one, print its URL, wait for Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdh_migrate.dev import airflow_local
from hdh_migrate.dev.airflow_local import HOST, AirflowLocalError, LocalAirflow

PG_PORT = 5432
REDIS_PORT = 6379
PG_USER = "postgres"
WORKER_ENV = "HDH_CELERY_WORKER_NAME"
REDIS_CLAIM_KEY = "hdh-migrate:airflow-celery:claim"
# Redis db numbers tried, highest first (0 is what everybody uses by default: never taken)
REDIS_DBS = tuple(range(15, 0, -1))


class ServicesUnavailableError(AirflowLocalError):
    """PostgreSQL or Redis is not available on 127.0.0.1 and could not be started."""


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the workers: ``wN@<fqdn>`` (the worker's name, from its environment)."""
    name = os.environ.get(WORKER_ENV)
    fqdn = socket.getfqdn()
    return f"{name}@{fqdn}" if name else fqdn


# -- services ----------------------------------------------------------------------------------------
def pg_url(db: str, *, driver: str = "postgresql+psycopg2") -> str:
    return f"{driver}://{PG_USER}@{HOST}:{PG_PORT}/{db}"


def _pg_connect(db: str = "postgres") -> Any:
    import psycopg2

    conn = psycopg2.connect(host=HOST, port=PG_PORT, user=PG_USER, dbname=db, connect_timeout=5)
    conn.autocommit = True
    return conn


def _redis(db: int = 0) -> Any:
    import redis

    return redis.Redis(host=HOST, port=REDIS_PORT, db=db, socket_timeout=5, socket_connect_timeout=5)


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if airflow_local.port_open(port):
            return True
        time.sleep(0.5)
    return airflow_local.port_open(port)


def _start_postgresql(say: Callable[[str], None]) -> str | None:
    """Start the machine's PostgreSQL cluster the documented way; None on success, else why not."""
    if not shutil.which("pg_ctlcluster"):
        return "PostgreSQL is not installed (no pg_ctlcluster)"
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*") if (p / "main").is_dir())
    if not versions:
        return "PostgreSQL has no cluster under /etc/postgresql/<version>/main"
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    say(f"airflow-celery: PostgreSQL is stopped; starting it: {' '.join(cmd)}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if out.returncode != 0 and not _wait_port(PG_PORT, 5):
        return f"`{' '.join(cmd)}` failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()[:300]}"
    return None if _wait_port(PG_PORT, 60) else f"PostgreSQL did not listen on {HOST}:{PG_PORT} after `{cmd}`"


def _start_redis(say: Callable[[str], None]) -> str | None:
    """Start Redis the documented way; None on success, else why not."""
    if not shutil.which("redis-server"):
        return "Redis is not installed (no redis-server)"
    cmd = [
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "-::1",
        "--port",
        str(REDIS_PORT),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        "/var/lib/redis",
        "--logfile",
        "/var/log/redis/ci.log",
    ]
    say(f"airflow-celery: Redis is stopped; starting it: {' '.join(cmd)}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0:
        return f"`redis-server` failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()[:300]}"
    return None if _wait_port(REDIS_PORT, 30) else f"Redis did not listen on {HOST}:{REDIS_PORT}"


def ensure_services(*, start: bool = True, say: Callable[[str], None] | None = None) -> str | None:
    """None when PostgreSQL (trust auth, user postgres) and Redis answer on 127.0.0.1, starting a stopped
    one if ``start``; otherwise the reason they are unavailable (for a visible skip)."""
    report = say or airflow_local.to_stderr
    for port, starter, name in ((PG_PORT, _start_postgresql, "PostgreSQL"), (REDIS_PORT, _start_redis, "Redis")):
        if airflow_local.port_open(port):
            continue
        if not start:
            return f"{name} is not running on {HOST}:{port}"
        why = starter(report)
        if why:
            return f"{name} is not running on {HOST}:{port} and could not be started: {why}"
    try:
        import asyncpg  # noqa: F401  (Airflow 3 opens an async engine on its metadata DB too)
        import psycopg2  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        return (
            f"Airflow on PostgreSQL + Redis needs psycopg2, asyncpg and redis in the virtualenv "
            f"(pip install -e '.[airflow]' asyncpg): {exc}"
        )
    try:
        with contextlib.closing(_pg_connect()) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL on {HOST}:{PG_PORT} refuses user {PG_USER} without password (trust auth needed): {exc}"
    try:
        _redis().ping()
    except Exception as exc:
        return f"Redis on {HOST}:{REDIS_PORT} does not answer PING: {exc}"
    return None


def create_database(name: str) -> None:
    with contextlib.closing(_pg_connect()) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    """Drop a database this module created (its connections are ended first)."""
    if not name.startswith("hdh_"):
        raise AirflowLocalError(f"refusing to drop database {name!r}: not one this module creates")
    with contextlib.closing(_pg_connect()) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def claim_redis_db(token: str, *, ttl: int = 4 * 3600) -> int:
    """An empty Redis database number, claimed with a key (so two deployments never share one)."""
    for n in REDIS_DBS:
        r = _redis(n)
        if r.dbsize() == 0 and r.set(REDIS_CLAIM_KEY, token, nx=True, ex=ttl):
            return n
    raise ServicesUnavailableError(f"no empty Redis database among {REDIS_DBS[-1]}-{REDIS_DBS[0]} on {HOST}")


def release_redis_db(n: int, token: str, queue: str) -> None:
    """Delete what Celery left in our Redis database (our queue, kombu bindings, unacked), then the claim."""
    r = _redis(n)
    if r.get(REDIS_CLAIM_KEY) not in (token.encode(), None):
        return  # not ours (anymore): touch nothing
    patterns = (f"{queue}*", "_kombu.binding.*", "unacked*", "celery*", "_kombu*")
    for pattern in patterns:
        for key in r.scan_iter(match=pattern, count=500):
            r.delete(key)
    r.delete(REDIS_CLAIM_KEY)


# -- the deployment ----------------------------------------------------------------------------------
@dataclass
class Worker:
    name: str
    sid: int
    log: Path
    killed: bool = False


@dataclass
class CeleryAirflow:
    """A running Celery deployment: the core components (``.af``, a :class:`LocalAirflow`) plus workers."""

    af: LocalAirflow
    env: dict[str, str]
    queue: str
    metadata_db: str
    state_db: str
    redis_db: int
    redis_token: str
    concurrency: int
    workers: dict[str, Worker] = field(default_factory=dict)
    say: Callable[[str], None] = field(default=airflow_local.to_stderr, repr=False)

    def __getattr__(self, name: str) -> Any:  # the REST helpers of LocalAirflow: trigger, wait_run, api, ...
        if name == "af":
            raise AttributeError(name)
        return getattr(self.af, name)

    # -- workers ---------------------------------------------------------------------------------
    def start_worker(self, name: str, *, concurrency: int | None = None) -> Worker:
        """Start ``airflow celery worker`` named ``name@<host>`` in a session of its own."""
        old = self.workers.get(name)
        if old is not None and not old.killed and airflow_local._session_pids(old.sid):
            raise AirflowLocalError(f"worker {name} already runs (session {old.sid})")
        airflow = airflow_local.venv_bin() / "airflow"
        argv = [
            str(airflow),
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}@%h",
            "--concurrency",
            str(concurrency or self.concurrency),
            "--queues",
            self.queue,
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
        ]
        env = dict(self.env)
        env[WORKER_ENV] = name
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = f"{__name__}.worker_hostname"
        log = self.af.log_dir / f"worker-{name}.log"
        if log.exists():
            log.replace(log.with_suffix(".log.1"))
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=self.af.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        worker = Worker(name=name, sid=proc.pid, log=log)
        self.workers[name] = worker
        self.say(f"airflow-celery: worker {name} started (session {proc.pid}, log {log})")
        return worker

    def wait_workers(self, names: list[str] | None = None, timeout: float = 120.0) -> float:
        """Wait until each worker logged Celery's ``ready.`` line; return the seconds waited."""
        t0 = time.monotonic()
        pending = set(names or [n for n, w in self.workers.items() if not w.killed])
        while pending:
            for name in sorted(pending):
                w = self.workers[name]
                text = w.log.read_text(errors="replace") if w.log.exists() else ""
                if f"{name}@" in text and " ready." in text:
                    pending.discard(name)
                elif not airflow_local._session_pids(w.sid):
                    raise AirflowLocalError(f"celery worker {name} exited; log {w.log}:\n{text[-3000:]}")
            if pending and time.monotonic() - t0 > timeout:
                raise AirflowLocalError(f"celery workers {sorted(pending)} not ready after {timeout:.0f} s")
            if pending:
                time.sleep(0.5)
        return time.monotonic() - t0

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL worker ``name`` and everything it started (its whole session, task processes included),
        as when its machine dies: no clean shutdown, no message acknowledged. Returns the pids killed."""
        w = self.workers[name]
        pids = airflow_local._session_pids(w.sid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(w.sid, signal.SIGKILL)
        for pid in airflow_local._session_pids(w.sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while airflow_local._session_pids(w.sid) and time.monotonic() < deadline:
            time.sleep(0.1)
        w.killed = True
        self.say(f"airflow-celery: worker {name} killed (SIGKILL, pids {pids})")
        return pids

    def worker_alive(self, name: str) -> bool:
        w = self.workers.get(name)
        return bool(w and not w.killed and airflow_local._session_pids(w.sid))

    def worker_of(self, hostname: str | None) -> str | None:
        """The worker name in a task instance's ``hostname`` (``wN@fqdn``), or None."""
        if not hostname or "@" not in hostname:
            return None
        return hostname.split("@", 1)[0]

    # -- REST helpers specific to this deployment -----------------------------------------------
    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (hostname, state, start/end, duration) from the REST API."""
        q = urllib.parse.quote
        path = f"/dags/{q(dag_id, safe='')}/dagRuns/{q(run_id, safe='')}/taskInstances/{q(task_id, safe='')}"
        path += f"/{map_index}/tries" if map_index >= 0 else "/tries"
        return list(self.af.api("GET", path).get("task_instances", []))

    # -- stop ------------------------------------------------------------------------------------
    def stop(self, *, keep_databases: bool = False) -> None:
        """Stop the workers and the components, drop both databases, release the Redis database."""
        for w in self.workers.values():
            if airflow_local._session_pids(w.sid):
                airflow_local.stop_session(w.sid, timeout=20, say=self.say)
        self.af.stop()
        if not keep_databases:
            for db in (self.metadata_db, self.state_db):
                try:
                    drop_database(db)
                except Exception as exc:  # never mask the test's own failure
                    self.say(f"airflow-celery: could not drop database {db}: {exc}")
        try:
            release_redis_db(self.redis_db, self.redis_token, self.queue)
        except Exception as exc:
            self.say(f"airflow-celery: could not clean Redis db {self.redis_db}: {exc}")

    def __enter__(self) -> CeleryAirflow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def celery_env(
    *,
    metadata_db: str,
    state_db: str,
    redis_db: int,
    queue: str,
    concurrency: int,
    workers: int,
    heartbeat_timeout: int = 20,
    heartbeat_check: float = 5.0,
) -> dict[str, str]:
    """What a Celery deployment adds to :func:`airflow_local.airflow_env` (executor, databases, broker, queue,
    heartbeat detection)."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(max(4, workers * concurrency)),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url(metadata_db),
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{HOST}:{REDIS_PORT}/{redis_db}",
        # "db+postgresql://" would pick SQLAlchemy 2.1's default driver (psycopg 3, not installed): name psycopg2
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{pg_url(metadata_db)}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        # a task whose worker died is noticed within ~heartbeat_timeout + heartbeat_check seconds
        # (the task supervisor heartbeats every [workers] min_heartbeat_interval = 5 s)
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(heartbeat_timeout),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": str(heartbeat_check),
        "HDH_MIGRATE_DB_URL": pg_url(state_db),
    }


def start_celery(
    home: Path | str,
    port: int | None = None,
    *,
    workers: int = 2,
    concurrency: int = 2,
    heartbeat_timeout: int = 20,
    extra_env: dict[str, str] | None = None,
    say: Callable[[str], None] | None = None,
    start_services: bool = True,
) -> CeleryAirflow:
    """Create the databases, claim a Redis db, start the components and ``workers`` Celery workers
    (``w1``, ``w2``, ...); returns once the API is healthy and every worker is ready. Raises
    :class:`ServicesUnavailableError` (nothing started) when PostgreSQL or Redis cannot be had."""
    report = say or airflow_local.to_stderr
    why = ensure_services(start=start_services, say=report)
    if why:
        raise ServicesUnavailableError(why)
    own = _claim_backends(uuid.uuid4().hex[:10])
    extra = celery_env(
        metadata_db=own.metadata_db,
        state_db=own.state_db,
        redis_db=own.redis_db,
        queue=own.queue,
        concurrency=concurrency,
        workers=workers,
        heartbeat_timeout=heartbeat_timeout,
    )
    extra.update(extra_env or {})
    report(
        f"airflow-celery: metadata db {own.metadata_db}, state db {own.state_db}, broker redis db {own.redis_db}, "
        f"queue {own.queue}"
    )
    return _start_deployment(home, port, extra, own, workers=workers, concurrency=concurrency, say=report)


def _start_deployment(
    home: Path | str,
    port: int | None,
    extra: dict[str, str],
    own: _Backends,
    *,
    workers: int,
    concurrency: int,
    say: Callable[[str], None],
) -> CeleryAirflow:
    """Start the core components with the Celery settings ``extra``, then the workers; on any failure,
    stop what started and give back the databases and the Redis db."""
    af: LocalAirflow | None = None
    dep: CeleryAirflow | None = None
    try:
        af = airflow_local.start(home, port, extra_env=extra, say=say)
        env = airflow_local.airflow_env(Path(home).resolve(), af.port, extra=extra)
        dep = CeleryAirflow(
            af=af,
            env=env,
            queue=own.queue,
            metadata_db=own.metadata_db,
            state_db=own.state_db,
            redis_db=own.redis_db,
            redis_token=own.token,
            concurrency=concurrency,
            say=say,
        )
        _start_workers(dep, workers)
        return dep
    except BaseException:
        _undo_start(dep, af, own)
        raise


@dataclass(frozen=True)
class _Backends:
    """What one deployment has of its own on the shared services: two databases, a Redis db, a queue."""

    metadata_db: str
    state_db: str
    queue: str
    redis_db: int
    token: str  # the value of the Redis db's claim key

    def release(self) -> None:
        """Drop the databases and release the Redis db, whatever fails (the caller is already failing)."""
        for db in (self.metadata_db, self.state_db):
            with contextlib.suppress(Exception):
                drop_database(db)
        with contextlib.suppress(Exception):
            release_redis_db(self.redis_db, self.token, self.queue)


def _claim_backends(tag: str) -> _Backends:
    """Create both databases and claim an empty Redis db; the databases are dropped again if none is free."""
    metadata_db, state_db, queue = f"hdh_af_{tag}", f"hdh_state_{tag}", f"hdh-migrate-{tag}"
    create_database(metadata_db)
    create_database(state_db)
    token = f"{socket.gethostname()}:{os.getpid()}:{tag}"
    try:
        redis_db = claim_redis_db(token)
    except Exception:
        drop_database(metadata_db)
        drop_database(state_db)
        raise
    return _Backends(metadata_db=metadata_db, state_db=state_db, queue=queue, redis_db=redis_db, token=token)


def _start_workers(dep: CeleryAirflow, workers: int) -> None:
    """Start ``w1`` ... ``wN`` (while the components come up), then wait for the API and every worker."""
    for i in range(1, workers + 1):
        dep.start_worker(f"w{i}")
    dep.af.wait_healthy()
    dep.wait_workers()


def _undo_start(dep: CeleryAirflow | None, af: LocalAirflow | None, own: _Backends) -> None:
    """Stop whatever a failed start got running and give back what it took on the shared services."""
    if dep is not None:
        dep.stop()
        return
    if af is not None:
        af.stop()
    own.release()


# -- command line ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hdh_migrate.dev.airflow_celery", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="are PostgreSQL and Redis available on 127.0.0.1 (starting them if stopped)?")
    s = sub.add_parser("start", help="start a Celery deployment in HOME; Ctrl-C stops it and drops its databases")
    s.add_argument("home")
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--concurrency", type=int, default=2)
    args = p.parse_args(argv)
    if args.cmd == "check":
        why = ensure_services()
        print(why or f"PostgreSQL {HOST}:{PG_PORT} and Redis {HOST}:{REDIS_PORT} are available")
        return 1 if why else 0
    dep = start_celery(args.home, args.port, workers=args.workers, concurrency=args.concurrency)
    try:
        dep.af.set_connections_from_rig()
        print(
            f"Airflow (CeleryExecutor, {args.workers} workers) at {dep.af.url}  "
            f"(login {dep.af.username} / {dep.af.password}); Ctrl-C stops it"
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        dep.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
