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
from dataclasses import asdict, dataclass

TB = 1000**4
GiB = 1024**3
MiB = 1024**2


@dataclass
class Assumptions:
    total_tb: float = 450.0
    # object size mix of the warehouse: (share of bytes, typical object size); SNDS tables are partitioned
    # Parquet/CSV extracts: mostly 128 MiB - 1 GiB files, plus a long tail of small ones.
    large_share: float = 0.85
    large_object_mib: float = 512.0
    small_object_mib: float = 8.0
    part_mib: float = 64.0
    link_gbps: float = 10.0  # Azure France Central -> the SecNumCloud zone
    link_efficiency: float = 0.8  # TCP/TLS/HTTP overhead, sharing
    workers: int = 16  # Celery worker hosts (8 vCPU each) in the destination zone
    vcpu_per_worker: int = 8
    # measured here: CPU seconds per GiB copied by one hdh-migrate process (hashing SHA-256 + MD5 of every
    # byte, TLS excluded since the rig is plain HTTP); see bench/results/latest.json
    cpu_s_per_gib_copy: float = 8.0
    cpu_s_per_gib_verify: float = 2.5
    tls_cpu_s_per_gib: float = 1.5  # AES-GCM both ways with AES-NI, per GiB (estimate)
    azure_egress_gbps: float = 50.0  # account egress target of a standard GPv2 account in large regions
    azure_requests_per_s: float = 20_000
    dest_ingest_gbps: float = 40.0  # the provider's S3 cluster ingest available to this tenant (ask them)
    dest_put_per_s: float = 3_000  # conservative per-bucket PUT rate of sovereign S3 offers (ask them)
    dest_read_gbps: float = 40.0
    shard_objects: int = 1_000
    max_shards_per_run: int = 1_000
    scheduler_tasks_per_min: float = 3_000  # a single Airflow 3 scheduler on PostgreSQL, conservative


def model(a: Assumptions) -> dict[str, object]:
    total = a.total_tb * TB
    large_objects = total * a.large_share / (a.large_object_mib * MiB)
    small_objects = total * (1 - a.large_share) / (a.small_object_mib * MiB)
    objects = large_objects + small_objects
    parts = large_objects * math.ceil(a.large_object_mib / a.part_mib) + small_objects

    gbps = 1e9 / 8  # bytes per second in one Gbit/s
    capacities = {
        "inter-cloud link": a.link_gbps * a.link_efficiency * gbps,
        "Azure account egress": a.azure_egress_gbps * gbps,
        "worker CPU (hashing + TLS)": a.workers
        * a.vcpu_per_worker
        * GiB
        / (a.cpu_s_per_gib_copy + a.tls_cpu_s_per_gib),
        "destination ingest": a.dest_ingest_gbps * gbps,
        "destination PUT rate": a.dest_put_per_s * total / parts,
        "Azure request rate": a.azure_requests_per_s * total / parts,
    }
    bottleneck = min(capacities, key=capacities.get)  # type: ignore[arg-type]
    rate = capacities[bottleneck]
    copy_s = total / rate
    shards = math.ceil(objects / a.shard_objects)
    tasks = shards * 2  # copy + verify per shard (validation per table is negligible in count)
    scheduler_s = tasks / a.scheduler_tasks_per_min * 60
    verify_rate = min(
        a.dest_read_gbps * gbps, a.workers * a.vcpu_per_worker * GiB / (a.cpu_s_per_gib_verify + a.tls_cpu_s_per_gib)
    )
    verify_s = total / verify_rate
    return {
        "assumptions": asdict(a),
        "objects": round(objects),
        "requests_parts": round(parts),
        "capacities_gbit_s": {k: round(v * 8 / 1e9, 1) for k, v in capacities.items()},
        "bottleneck": bottleneck,
        "copy_rate_gbit_s": round(rate * 8 / 1e9, 2),
        "copy_days": round(copy_s / 86400, 1),
        "verify_rate_gbit_s": round(verify_rate * 8 / 1e9, 1),
        "verify_days_if_not_overlapped": round(verify_s / 86400, 1),
        "total_days_verify_overlapped": round(max(copy_s, verify_s) / 86400 + verify_s / 86400 / max(shards, 1), 1),
        "shards": shards,
        "dag_runs_needed": math.ceil(shards / a.max_shards_per_run),
        "task_instances": tasks,
        "scheduler_busy_hours": round(scheduler_s / 3600, 1),
        "workers_to_saturate_link": math.ceil(
            capacities["inter-cloud link"] / (a.vcpu_per_worker * GiB / (a.cpu_s_per_gib_copy + a.tls_cpu_s_per_gib))
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(Assumptions()).items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    p.add_argument("--json", action="store_true")
    args = vars(p.parse_args(argv))
    as_json = args.pop("json")
    result = model(Assumptions(**args))
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"objects ~{result['objects']:,}, requests (parts) ~{result['requests_parts']:,}")
    for stage, cap in result["capacities_gbit_s"].items():  # type: ignore[union-attr]
        mark = "  <- bottleneck" if stage == result["bottleneck"] else ""
        print(f"  {stage:32} {cap:8.1f} Gbit/s{mark}")
    print(
        f"copy: {result['copy_rate_gbit_s']} Gbit/s -> {result['copy_days']} days; "
        f"verify (full re-read in the destination zone): {result['verify_rate_gbit_s']} Gbit/s, "
        f"{result['verify_days_if_not_overlapped']} days if run after, overlapped with the copy otherwise"
    )
    print(
        f"shards {result['shards']:,} in {result['dag_runs_needed']} DAG runs, {result['task_instances']:,} task "
        f"instances, scheduler busy ~{result['scheduler_busy_hours']} h in total; "
        f"{result['workers_to_saturate_link']} workers saturate the link"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
