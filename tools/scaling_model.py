"""Model of the full Health Data Hub migration (450 TB) from throughputs measured on the test machine.

    .venv/bin/python tools/scaling_model.py                       # the plan in docs/SCALING.md
    .venv/bin/python tools/scaling_model.py --link-gbps 25 --workers 24 --json

Every figure in docs/SCALING.md comes out of this script; change an assumption, re-run, re-read. The model
is deliberately simple: each stage (source egress, the inter-cloud link, worker CPU, destination ingest,
request rates, the Airflow scheduler) has a capacity; the migration goes at the pace of the smallest, and
verification (re-reading the destination inside the destination zone) overlaps with copying.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

TB = 1000**4
GiB = 1024**3
MiB = 1024**2


@dataclass
class Assumptions:
    total_tb: float = 450.0
    # object size mix of the warehouse: (share of bytes, typical object size); SNDS tables are partitioned
    # Parquet/CSV extracts: mostly 128 MiB - 1 GiB files, plus a long tail of small ones. Replace with the
    # real histogram of `hdh-migrate inventory` before the migration.
    large_share: float = 0.85
    large_object_mib: float = 512.0
    small_object_mib: float = 8.0
    part_mib: float = 64.0
    azure_get_mib: float = 32.0  # the Azure SDK reads a range in one GET up to 32 MiB (max_single_get_size)
    link_gbps: float = 10.0  # Azure France Central -> the SecNumCloud zone
    link_efficiency: float = 0.8  # TCP/TLS/HTTP overhead, sharing
    workers: int = 4  # Celery worker hosts (8 vCPU each) in the destination zone: 2 saturate 10 Gbit/s, +2 spare
    vcpu_per_worker: int = 8
    concurrency: int = 4  # AIRFLOW__CELERY__WORKER_CONCURRENCY: shard tasks per worker
    max_parallel: int = 8  # the DAG Param: transfer threads per shard task
    # measured here (bench/results/latest.json, one hdh-migrate process, plain HTTP, the direct path for every
    # request of a copy): CPU seconds per GiB for large objects with CRC32C parts (huge/hdh_copy 1.85,
    # large/hdh_copy 2.2 with its start-up) plus 1.15 s/GiB for the MD5 parts of the md5 provider profiles
    # (ovhcloud, outscale, scaleway, cloudtemple); verify ~1.2 (large/hdh_verify 1.4 with its start-up); per
    # object from the 100,000 x 4 KiB copy (scale/hdh_copy of 20261124T142802Z: 53.1 CPU s -> 0.53 ms; 0.8 ms
    # before the direct path moved to http.client) and the 64 KiB verify (small/hdh_verify 0.73 CPU s per
    # 1,000, minus the ~0.2 s start -> ~0.5 ms)
    cpu_s_per_gib_copy: float = 2.9
    cpu_ms_per_object_copy: float = 0.55
    cpu_s_per_gib_verify: float = 1.2
    cpu_ms_per_object_verify: float = 0.5
    tls_cpu_s_per_gib: float = 1.5  # AES-GCM both ways with AES-NI, per GiB (estimate; the rig is plain HTTP)
    # one transfer thread over the inter-cloud link (64 MiB ranged GET then PUT, ~10 ms RTT): an estimate to
    # replace with the first real shard's figure (here, on loopback, one 8-thread task moved ~50-60 MiB/s
    # with the CPU shared with both stores)
    stream_mib_s: float = 40.0
    azure_egress_gbps: float = 50.0  # account egress target of a standard GPv2 account in large regions
    azure_requests_per_s: float = 20_000
    dest_ingest_gbps: float = 40.0  # the provider's S3 cluster ingest available to this tenant (ask them)
    dest_put_per_s: float = 3_000  # conservative per-bucket PUT rate of sovereign S3 offers (ask them)
    dest_read_gbps: float = 40.0
    shard_gib: float = 64.0  # bytes per shard (shard_max_objects = shard_gib / mean object size)
    max_shards_per_run: int = 1_000
    # measured here (docs/scaling-measured.json): fixed cost of one shard task on a Celery worker (process
    # start, imports, opening both stores, reading the shard manifest) and the queued -> running latency
    task_overhead_s: float = 6.0
    # a single Airflow 3 scheduler on PostgreSQL: task instances it can queue per second (conservative
    # estimate: the runs here never came near it; HA schedulers multiply it)
    scheduler_tasks_per_s: float = 10.0
    heartbeat_s: float = 5.0  # [workers] min_heartbeat_interval: one metadata-DB write per running task
    metadata_db_writes_per_s: float = 2_000  # a modest managed PostgreSQL (estimate)


GBPS = 1e9 / 8  # bytes per second in one Gbit/s


def _mix(a: Assumptions) -> dict[str, float]:
    total = a.total_tb * TB
    large_objects = total * a.large_share / (a.large_object_mib * MiB)
    small_objects = total * (1 - a.large_share) / (a.small_object_mib * MiB)
    parts_per_large = math.ceil(a.large_object_mib / a.part_mib)
    gets_per_part = math.ceil(min(a.part_mib, a.large_object_mib) / a.azure_get_mib)
    return {
        "total": total,
        "objects": large_objects + small_objects,
        "parts": large_objects * parts_per_large + small_objects,
        "azure_gets": large_objects * parts_per_large * gets_per_part
        + small_objects * math.ceil(a.small_object_mib / a.azure_get_mib),
        "mean_object": total / (large_objects + small_objects),
    }


def capacities(a: Assumptions) -> dict[str, float]:
    """Bytes per second each stage can carry for the whole migration."""
    m = _mix(a)
    objects_per_byte = m["objects"] / m["total"]
    cpu_per_byte = (a.cpu_s_per_gib_copy + a.tls_cpu_s_per_gib) / GiB + objects_per_byte * (
        a.cpu_ms_per_object_copy / 1e3
    )
    slots = a.workers * a.concurrency
    shard = a.shard_gib * GiB
    per_task = a.max_parallel * a.stream_mib_s * MiB
    return {
        "inter-cloud link": a.link_gbps * a.link_efficiency * GBPS,
        "Azure account egress": a.azure_egress_gbps * GBPS,
        "worker CPU (hashing + TLS)": a.workers * a.vcpu_per_worker / cpu_per_byte,
        # each slot moves a shard at its threads' pace, then pays the fixed cost of the next task
        "task slots (threads, per-task overhead)": slots * shard / (a.task_overhead_s + shard / per_task),
        # every shard is two task instances (copy, verify) the scheduler has to queue
        "scheduler (task starts)": a.scheduler_tasks_per_s / 2 * shard,
        "destination ingest": a.dest_ingest_gbps * GBPS,
        "destination PUT rate": a.dest_put_per_s * m["total"] / m["parts"],
        "Azure request rate": a.azure_requests_per_s * m["total"] / m["azure_gets"],
    }


def model(a: Assumptions) -> dict[str, object]:
    m = _mix(a)
    total = m["total"]
    caps = capacities(a)
    ranked = sorted(caps, key=caps.get)  # type: ignore[arg-type]
    bottleneck = ranked[0]
    rate = caps[bottleneck]
    copy_s = total / rate
    slots = a.workers * a.concurrency

    objects_per_byte = m["objects"] / total
    verify_cpu_per_byte = (a.cpu_s_per_gib_verify + a.tls_cpu_s_per_gib) / GiB + objects_per_byte * (
        a.cpu_ms_per_object_verify / 1e3
    )
    verify_rate = min(a.dest_read_gbps * GBPS, a.workers * a.vcpu_per_worker / verify_cpu_per_byte)
    verify_s = total / verify_rate

    shard_bytes = a.shard_gib * GiB
    shards = math.ceil(total / shard_bytes)
    shard_max_objects = max(1, round(shard_bytes / m["mean_object"]))
    per_task_rate = rate / slots  # when every slot is busy, each shard task gets its share of the bottleneck
    shard_s = shard_bytes / per_task_rate + a.task_overhead_s
    tasks = shards * 2 + 4 * math.ceil(shards / a.max_shards_per_run)  # copy + verify per shard, 4 per run
    # task starts per second needed to carry the rate every other stage allows (copy + verify per shard)
    unscheduled = min(v for k, v in caps.items() if k != "scheduler (task starts)")
    tasks_per_s_needed = 2 * unscheduled / shard_bytes
    # the per-object CPU of the verify pass also runs on the workers while copies go on
    per_worker_copy = min(
        a.vcpu_per_worker / ((a.cpu_s_per_gib_copy + a.tls_cpu_s_per_gib) / GiB
                             + objects_per_byte * a.cpu_ms_per_object_copy / 1e3),
        a.concurrency * a.max_parallel * a.stream_mib_s * MiB,
    )
    # the scheduler becomes the limit when shards are so short that slots wait for it
    min_shard_s_for_scheduler = 2 * slots / a.scheduler_tasks_per_s
    return {
        "assumptions": asdict(a),
        "objects": round(m["objects"]),
        "mean_object_mib": round(m["mean_object"] / MiB, 1),
        "requests_parts": round(m["parts"]),
        "azure_gets": round(m["azure_gets"]),
        "capacities_gbit_s": {k: round(v * 8 / 1e9, 1) for k, v in caps.items()},
        "bottleneck": bottleneck,
        "next_bottleneck": ranked[1],
        "copy_rate_gbit_s": round(rate * 8 / 1e9, 2),
        "copy_days": round(copy_s / 86400, 1),
        "azure_requests_per_s_at_rate": round(rate * m["azure_gets"] / total),
        "dest_puts_per_s_at_rate": round(rate * m["parts"] / total),
        "verify_rate_gbit_s": round(verify_rate * 8 / 1e9, 1),
        "verify_days_if_not_overlapped": round(verify_s / 86400, 1),
        "total_days_verify_overlapped": round(max(copy_s, verify_s) / 86400 + verify_s / 86400 / max(shards, 1), 1),
        "total_days_verify_after": round((copy_s + verify_s) / 86400, 1),
        "shards": shards,
        "shard_max_objects": shard_max_objects,
        "shard_minutes": round(shard_s / 60, 1),
        "task_overhead_share": round(a.task_overhead_s / shard_s, 4),
        "dag_runs_needed": math.ceil(shards / a.max_shards_per_run),
        "task_instances": tasks,
        "scheduler_tasks_per_s_needed": round(tasks_per_s_needed, 3),
        "scheduler_utilisation": round(tasks_per_s_needed / a.scheduler_tasks_per_s, 4),
        "scheduler_limits_below_shard_s": round(min_shard_s_for_scheduler, 1),
        "heartbeat_db_writes_per_s": round(slots / a.heartbeat_s, 1),
        "metadata_db_utilisation": round(slots / a.heartbeat_s / a.metadata_db_writes_per_s, 4),
        "task_slots": slots,
        "per_worker_copy_mib_s": round(per_worker_copy / MiB),
        "workers_to_saturate_link": math.ceil(caps["inter-cloud link"] / per_worker_copy),
    }


def simulate(a: Assumptions, *, step_s: float = 10.0, kill_worker_at_h: float | None = None,
             heartbeat_timeout_s: float = 300.0, retry_delay_s: float = 30.0) -> dict[str, object]:
    """Time-stepped simulation of the shards over the task slots: each running task pays its fixed overhead,
    then shares the bottleneck's capacity with the other running tasks (capped by its own threads); the
    scheduler starts at most ``scheduler_tasks_per_s`` tasks per second. With ``kill_worker_at_h``, one
    worker dies then: its tasks are noticed after the heartbeat timeout, retried after the retry delay on
    the others, and resume where their multipart uploads stopped (bytes already stored are not re-sent).
    Meant for shards of minutes (the plan); with shards of seconds the 10 s step overstates idle time."""
    total = a.total_tb * TB
    cap = capacities(a)
    link = min(cap.values())  # every stage's capacity is shared by the running tasks
    shard_bytes = a.shard_gib * GiB
    n = math.ceil(total / shard_bytes)
    pending = [total - shard_bytes * (n - 1)] + [shard_bytes] * (n - 1)  # popped from the end
    slots = a.workers * a.concurrency
    per_task_cap = a.max_parallel * a.stream_mib_s * MiB
    running: list[list[float]] = []  # [bytes left, overhead left, worker]
    waiting: list[tuple[float, float]] = []  # (ready at, bytes left) after a worker loss
    t = 0.0
    moved = 0.0
    dead_worker = None
    while pending or running or waiting:
        if kill_worker_at_h is not None and dead_worker is None and t >= kill_worker_at_h * 3600:
            dead_worker = 0
            for task in [r for r in running if r[2] == 0]:
                running.remove(task)
                waiting.append((t + heartbeat_timeout_s + retry_delay_s, task[0]))
        free_by_worker = {w: a.concurrency - sum(1 for r in running if r[2] == w) for w in range(a.workers)
                          if w != dead_worker}
        can_start = int(a.scheduler_tasks_per_s * step_s)
        ready = [wt for wt in waiting if wt[0] <= t]
        for w, free in free_by_worker.items():
            for _ in range(free):
                if can_start <= 0:
                    break
                if ready:
                    item = ready.pop(0)
                    waiting.remove(item)
                    running.append([item[1], a.task_overhead_s, w])
                elif pending:
                    running.append([pending.pop(), a.task_overhead_s, w])
                else:
                    break
                can_start -= 1
        # a task still paying its fixed overhead transfers only for the rest of the step
        active = [max(0.0, step_s - max(0.0, r[1])) / step_s for r in running]
        share = min(per_task_cap, link / max(1e-9, sum(active)))
        for r, frac in zip(running, active, strict=True):
            r[1] -= step_s
            done = min(r[0], share * step_s * frac)
            r[0] -= done
            moved += done
        running = [r for r in running if r[0] > 0]
        t += step_s
        if t > 3600 * 24 * 3650:
            raise RuntimeError("simulation does not converge: check the assumptions")
    return {"days": round(t / 86400, 2), "mean_rate_gbit_s": round(moved * 8 / 1e9 / t, 2),
            "slots": slots, "worker_killed_at_h": kill_worker_at_h}


# -- measuring on this machine (a real Celery deployment) -----------------------------------------------
MEASURED_FILE = Path(__file__).resolve().parents[1] / "docs" / "scaling-measured.json"


def _phase(tis: list[dict[str, Any]], task_id: str) -> tuple[float, list[dict[str, Any]]]:
    """(seconds from the first start to the last end of ``task_id``'s instances, those instances)."""
    rows = [t for t in tis if t["task_id"] == task_id and t.get("start_date") and t.get("end_date")]
    if not rows:
        return 0.0, []
    start = min(datetime.fromisoformat(t["start_date"]) for t in rows)
    end = max(datetime.fromisoformat(t["end_date"]) for t in rows)
    return (end - start).total_seconds(), rows


def _measure_run(dep: Any, name: str, conf: dict[str, Any], say: Any) -> dict[str, Any]:
    dag = "hdh_migrate_dataset"
    t0 = time.monotonic()
    run_id = dep.af.trigger(dag, conf)
    state = dep.af.wait_run(dag, run_id, timeout=3600, show=False)
    wall = time.monotonic() - t0
    if state != "success":
        raise RuntimeError(f"measurement run {name} ended {state}; logs under {dep.af.home}")
    tis = dep.af.task_instances(dag, run_id)
    out: dict[str, Any] = {"name": name, "conf": conf, "run_id": run_id, "wall_s": round(wall, 1),
                           "workers_alive": sorted(n for n in dep.workers if dep.worker_alive(n))}
    for task_id, key in (("copy_shard", "copied_bytes"), ("verify_shard", "bytes_read")):
        span, rows = _phase(tis, task_id)
        shards, per_worker = [], {}
        for t in rows:
            x = dep.af.xcom(dag, run_id, task_id, map_index=t["map_index"]) or {}
            nbytes, secs = int(x.get(key) or 0), float(t.get("duration") or 0)
            objects = int(x.get("objects") or x.get("matched") or 0)
            worker = dep.worker_of(t.get("hostname"))
            queued = t.get("queued_when")
            wait = ((datetime.fromisoformat(t["start_date"]) - datetime.fromisoformat(queued)).total_seconds()
                    if queued else None)
            shards.append({"map_index": t["map_index"], "worker": worker, "seconds": round(secs, 2), "bytes": nbytes,
                           "objects": objects, "queued_to_start_s": round(wait, 2) if wait is not None else None,
                           "mib_s": round(nbytes / MiB / secs, 1) if secs else None,
                           "objects_s": round(objects / secs, 1) if secs else None})
            w = per_worker.setdefault(worker or "?", {"shards": 0, "bytes": 0, "objects": 0, "busy_s": 0.0})
            w["shards"] += 1
            w["bytes"] += nbytes
            w["objects"] += objects
            w["busy_s"] = round(w["busy_s"] + secs, 2)
        total = sum(s["bytes"] for s in shards)
        objs = sum(s["objects"] for s in shards)
        for w in per_worker.values():
            w["mib_s_over_phase"] = round(w["bytes"] / MiB / span, 1) if span else None
            w["objects_s_over_phase"] = round(w["objects"] / span, 1) if span else None
        out[task_id] = {"phase_s": round(span, 1), "bytes": total, "objects": objs,
                        "mib_s": round(total / MiB / span, 1) if span else None,
                        "objects_s": round(objs / span, 1) if span else None,
                        "per_worker": per_worker, "shards": shards}
    c, v = out["copy_shard"], out["verify_shard"]
    say(f"{name}: wall {out['wall_s']} s; copy {c['mib_s']} MiB/s ({c['objects_s']} obj/s) over {c['phase_s']} s, "
        f"per worker {({k: w['mib_s_over_phase'] for k, w in c['per_worker'].items()})}; verify {v['mib_s']} MiB/s")
    return out


def measure(out_path: Path, *, large_objects: int = 16, large_mib: int = 128, small_objects: int = 2000,
            small_kib: int = 64) -> dict[str, Any]:
    """Run hdh_migrate_dataset on a real Celery deployment (PostgreSQL, Redis, 2 workers x concurrency 2) on
    the rig, with two and with one worker; write per-shard and per-worker throughput to ``out_path``."""
    import os
    import platform
    import shutil
    import tempfile
    import uuid

    from hdh_migrate.dev import airflow_celery, rig
    from hdh_migrate.stores import AzureBlobStore, S3Store, open_store

    def say(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    rig.up(quiet=True)
    os.environ.update(rig.env())
    tag = uuid.uuid4().hex[:8]
    src, dst = open_store(f"azure://scale-src-{tag}/"), open_store(f"s3://scale-dst-{tag}/")
    assert isinstance(src, AzureBlobStore) and isinstance(dst, S3Store)
    src.create_container()
    dst.create_bucket()
    home = Path(tempfile.mkdtemp(prefix="hdh-scaling-"))
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                               "deployment": "CeleryExecutor, PostgreSQL 127.0.0.1, Redis broker, workers x "
                                             "concurrency 2, pool hdh_dest_store 4", "runs": []}
    dep = None
    try:
        t0 = time.monotonic()
        block = os.urandom(large_mib * MiB)
        for i in range(large_objects):  # distinct objects: the first 16 bytes differ
            src.put(f"large/obj-{i:03d}.bin", i.to_bytes(16, "big") + block[16:])
        small = os.urandom(small_kib * 1024)
        for i in range(small_objects):
            src.put(f"small/obj-{i:05d}.bin", i.to_bytes(16, "big") + small[16:])
        say(f"seeded {large_objects} x {large_mib} MiB and {small_objects} x {small_kib} KiB in "
            f"{time.monotonic() - t0:.0f} s")
        t0 = time.monotonic()
        dep = airflow_celery.start_celery(home, workers=2, concurrency=2,
                                          extra_env={"HDH_MIGRATE_WORK_DIR": str(home / "work")}, say=say)
        dep.af.set_connections_from_rig()
        dep.af.ensure_pool("hdh_source_store", 2, "listing the source")
        dep.af.ensure_pool("hdh_dest_store", 4, "copy and verify")
        dep.af.wait_dag("hdh_migrate_dataset")
        results["deployment_ready_s"] = round(time.monotonic() - t0, 1)
        base = {"source_container": src.container, "dest_bucket": dst.container, "part_size_mib": 8,
                "max_parallel": 8, "verify": "full", "dry_run": False}
        large = base | {"source_prefix": "large", "shard_max_objects": 2}
        results["runs"].append(_measure_run(dep, "large objects, 2 workers",
                                            large | {"dataset": "scale-large-2w", "dest_prefix": "l2"}, say))
        results["runs"].append(_measure_run(dep, "small objects, 2 workers",
                                            base | {"dataset": "scale-small-2w", "source_prefix": "small",
                                                    "dest_prefix": "s2",
                                                    "shard_max_objects": max(1, small_objects // 8)}, say))
        airflow_celery.airflow_local.stop_session(dep.workers["w2"].sid, timeout=20)
        dep.workers["w2"].killed = True
        results["runs"].append(_measure_run(dep, "large objects, 1 worker",
                                            large | {"dataset": "scale-large-1w", "dest_prefix": "l1"}, say))
        results["finished"] = datetime.now().astimezone().isoformat(timespec="seconds")
        out_path.write_text(json.dumps(results, indent=2) + "\n")
        say(f"wrote {out_path}")
        return results
    finally:
        if dep is not None:
            dep.stop()
        dst.delete_bucket()
        src.delete_container()
        if results.get("finished"):  # keep the logs of a failed measurement
            shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["measure"]:
        mp = argparse.ArgumentParser(prog="scaling_model.py measure", description=measure.__doc__)
        mp.add_argument("--out", type=Path, default=MEASURED_FILE)
        mp.add_argument("--large-objects", type=int, default=16)
        mp.add_argument("--small-objects", type=int, default=2000)
        margs = mp.parse_args(argv[1:])
        measure(margs.out, large_objects=margs.large_objects, small_objects=margs.small_objects)
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(Assumptions()).items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    p.add_argument("--json", action="store_true")
    p.add_argument("--simulate", action="store_true", help="also run the time-stepped simulation")
    p.add_argument("--kill-worker-at-h", type=float, default=None,
                   help="in the simulation, lose one worker at this hour (heartbeat timeout 300 s, retry 30 s)")
    args = vars(p.parse_args(argv))
    as_json, sim, kill = args.pop("json"), args.pop("simulate"), args.pop("kill_worker_at_h")
    a = Assumptions(**args)
    result = model(a)
    if sim or kill is not None:
        result["simulation"] = simulate(a, kill_worker_at_h=kill)
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"objects ~{result['objects']:,} (mean {result['mean_object_mib']} MiB), S3 parts ~"
          f"{result['requests_parts']:,}, Azure GETs ~{result['azure_gets']:,}")
    for stage, cap in result["capacities_gbit_s"].items():  # type: ignore[union-attr]
        mark = "  <- bottleneck" if stage == result["bottleneck"] else (
            "  <- next" if stage == result["next_bottleneck"] else "")
        print(f"  {stage:40} {cap:8.1f} Gbit/s{mark}")
    print(f"copy: {result['copy_rate_gbit_s']} Gbit/s -> {result['copy_days']} days "
          f"(Azure {result['azure_requests_per_s_at_rate']:,} GET/s, destination {result['dest_puts_per_s_at_rate']:,} "
          f"PUT/s at that rate)")
    print(f"verify (full re-read in the destination zone): {result['verify_rate_gbit_s']} Gbit/s, "
          f"{result['verify_days_if_not_overlapped']} days alone; total {result['total_days_verify_overlapped']} days "
          f"overlapped, {result['total_days_verify_after']} days if verified after")
    print(f"shards: {result['shards']:,} of {a.shard_gib:g} GiB (shard_max_objects ~{result['shard_max_objects']:,}), "
          f"~{result['shard_minutes']} min each, overhead {result['task_overhead_share']:.2%}; "
          f"{result['dag_runs_needed']} DAG runs, {result['task_instances']:,} task instances")
    print(f"scheduler: {result['scheduler_tasks_per_s_needed']} tasks/s needed "
          f"({result['scheduler_utilisation']:.2%} of {a.scheduler_tasks_per_s:g}/s; it limits only below "
          f"{result['scheduler_limits_below_shard_s']} s per shard); metadata DB: "
          f"{result['heartbeat_db_writes_per_s']} heartbeat writes/s ({result['metadata_db_utilisation']:.2%})")
    print(f"workers: {result['task_slots']} task slots; one worker copies ~{result['per_worker_copy_mib_s']} MiB/s; "
          f"{result['workers_to_saturate_link']} worker(s) saturate the link")
    if "simulation" in result:
        sr = result["simulation"]
        print(f"simulation: {sr['days']} days at a mean {sr['mean_rate_gbit_s']} Gbit/s"  # type: ignore[index]
              + (f", one worker lost at hour {kill:g}" if kill is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
