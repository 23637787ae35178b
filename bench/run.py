"""bench/run: hdh-migrate against the stores' own limits, rclone and Airflow's AzureBlobStorageToS3Operator.

One run, the same data and the same stores for every contender, each tool a subprocess measured from the
outside (wall time, peak RSS, CPU seconds), repeated and reduced to medians; prints a table and the ratios
and writes bench/results/latest.json (plus a dated copy). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hdh_migrate.dev import rig

from . import measure, scalestore, shapes, tools
from .shapes import GiB, MiB, Shape

RESULTS = Path(__file__).resolve().parent / "results"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            return json.loads(line)
    return {}


def _summary_json(text: str) -> dict[str, Any]:
    start = text.find("{")
    return json.loads(text[start:]) if start >= 0 else {}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = datetime.now(UTC).strftime("run-%Y%m%dT%H%M%SZ")
        self.env = tools.Env()
        self.runs: list[dict[str, Any]] = []
        self.failures: list[str] = []

    # -- one measured subprocess ------------------------------------------------------------------
    def measure(self, shape: Shape, tool: str, rep: int, argv: list[str], env: dict[str, str],
                seconds_from: str = "wall") -> dict[str, Any]:
        # untimed: no dirty page cache left by the contender before (SeaweedFS writes its volumes through
        # it; ~2 GB pile up within a repetition). Without this, a `copy --verify full` run after three other
        # contenders cost SeaweedFS 5.6-7.6 CPU-s (5 repetitions), after a sync 5.57 and 5.66
        os.sync()
        r = measure.run(f"{shape.name}/{tool}", argv, env=env)
        rec: dict[str, Any] = {
            "shape": shape.name, "tool": tool, "rep": rep, "rc": r.rc, "wall_s": round(r.wall_s, 3),
            "rss_mib": round(r.rss_mib, 1), "cpu_s": round(r.cpu_s, 2), "store_cpu_s": r.store_cpu_s,
        }
        seconds = r.wall_s
        if seconds_from == "json":  # tools that time their own work (the read sink, the Airflow operator)
            out = _json_line(r.stdout)
            rec["reported"] = out
            seconds = float(out.get("read_s") or out.get("seconds") or r.wall_s)
        elif tool.startswith("hdh"):
            s = _summary_json(r.stdout)
            rec["hdh_seconds"] = s.get("seconds")
            c = s.get("counts", {})
            rec["hdh_counts"] = {k: c.get(k) for k in ("copied", "skipped", "failed", "matched", "checked",
                                                          "missing", "differs", "extra", "errors") if k in c}
            if r.rc == 0 and tool in ("hdh_copy", "hdh_copy_verify") and c.get("copied") != shape.count:
                r.rc = 99
                rec["rc"] = 99
            if tool == "hdh_copy_verify":
                vc = s.get("verify", {}).get("counts", {})
                rec["hdh_verify_counts"] = {k: vc.get(k) for k in ("matched", "checked", "bytes_read")}
                if r.rc == 0 and vc.get("matched") != shape.count:
                    r.rc = 98
                    rec["rc"] = 98
        rec["seconds"] = round(seconds, 3)
        rec["mibps"] = round(shape.total / MiB / seconds, 2) if seconds > 0 else None
        rec["objps"] = round(shape.count / seconds, 1) if seconds > 0 else None
        rec["cpu_s_per_gib"] = round(r.cpu_s / (shape.total / GiB), 2)
        if r.rc != 0:
            tail = (r.stderr.strip().splitlines() or [""])[-3:]
            self.failures.append(f"{shape.name}/{tool} rep {rep}: exit {r.rc}: {' | '.join(tail)}")
            rec["stderr_tail"] = tail
        self.runs.append(rec)
        log(f"  {shape.name:12} {tool:16} rep {rep}  {seconds:7.2f} s  {rec['mibps'] or 0:7.1f} MiB/s "
            f"{rec['objps'] or 0:8.1f} obj/s  rss {rec['rss_mib']:6.0f} MiB  cpu {rec['cpu_s']:6.2f} s"
            f"{'' if r.rc == 0 else f'  EXIT {r.rc}'}")
        return rec

    # -- the comparisons ------------------------------------------------------------------------------
    def compare(self, shape: Shape) -> None:
        e = self.env
        local = shapes.mirror(shape)
        base = f"{self.run_id}/{shape.name}"
        hdh_env, rc_env, af_env = e.hdh_env(), e.rclone_env(), e.airflow_env()

        def limit_read(rep: int) -> None:
            self.measure(shape, "limit_read", rep, e.azure_read_limit(shape.prefix), hdh_env, seconds_from="json")

        def limit_write(rep: int) -> None:
            self.measure(shape, "limit_write", rep, e.rclone_write_limit(local, f"{base}/limit/{rep}"), rc_env)

        def hdh(rep: int) -> None:
            dest = f"{base}/hdh/{rep}/"
            self.measure(shape, "hdh_copy", rep, e.hdh_copy(shape.prefix, dest, f"w-{shape.name}-c{rep}"), hdh_env)
            self.measure(shape, "hdh_verify", rep, e.hdh_verify(shape.prefix, dest, f"w-{shape.name}-v{rep}"), hdh_env)

        def hdh_one(rep: int) -> None:
            # what a user runs to copy and prove it: one command (`copy --verify full`), one source listing
            dest = f"{base}/hdh1/{rep}/"
            self.measure(shape, "hdh_copy_verify", rep,
                         e.hdh_copy(shape.prefix, dest, f"w-{shape.name}-cv{rep}", ["--verify", "full"]), hdh_env)

        def rclone(rep: int) -> None:
            dest = f"{base}/rclone/{rep}"
            self.measure(shape, "rclone_copy", rep, e.rclone_copy(shape.name, dest), rc_env)
            self.measure(shape, "rclone_check", rep, e.rclone_check(shape.name, dest), rc_env)

        def rclone_checked(rep: int) -> None:
            # informative: rclone with every part checked by the store, as hdh-migrate sends them
            self.measure(shape, "rclone_copy_checked", rep,
                         e.rclone_copy(shape.name, f"{base}/rclonec/{rep}", tools.RCLONE_CHECKED_FLAGS), rc_env)

        def proto(rep: int) -> None:
            dest = f"{base}/proto/{rep}/"
            pe = e.hdh_env()
            self.measure(shape, "proto_copy", rep,
                         e.hdh_copy(shape.prefix, dest, f"w-{shape.name}-pc{rep}", proto=self.args.proto), pe)
            self.measure(shape, "proto_verify", rep,
                         e.hdh_verify(shape.prefix, dest, f"w-{shape.name}-pv{rep}", proto=self.args.proto), pe)

        def airflow(rep: int) -> None:
            self.measure(shape, "airflow_op", rep, e.airflow_op(shape.prefix, f"{base}/airflow/{rep}"), af_env,
                         seconds_from="json")

        contenders = [limit_read, limit_write, hdh, hdh_one, rclone]
        if shape.size > tools.RCLONE_CHECKED_CUTOFF:  # objects rclone would otherwise send unchecked and whole
            contenders.append(rclone_checked)
        if self.args.proto:
            contenders.append(proto)
        if not self.args.skip_airflow:
            contenders.append(airflow)
        log(f"{shape.name}: {shape.describe()} ({shapes.human(shape.total)}), {self.args.reps} repetition(s)")
        self.repetitions(shape, base, contenders)

    def repetitions(self, shape: Shape, base: str, contenders: list[Callable[[int], None]]) -> None:
        """Run every contender once per repetition, each repetition on fresh stores."""
        log("  " + tools.vacuum_store())
        for rep in range(1, self.args.reps + 1):
            # untimed: a fresh Azurite for every repetition, warmed by one read of the shape (its files into the
            # page cache, its JIT warm), so that no contender meets an Azurite aged by the runs before it
            self.fresh_azurite(shape, self.env.hdh_env())
            k = (rep - 1) % len(contenders)  # rotate the order: no contender always runs first or last
            for fn in contenders[k:] + contenders[:k]:
                fn(rep)
            # untimed: what this repetition wrote goes, and the store compacts, so that every repetition
            # meets the same store
            log("  " + tools.clear_and_settle(f"{base}/"))

    def compare_multipart(self, shape: Shape) -> None:
        """hdh-migrate and rclone on objects above rclone's single-PUT cutoff (200 MiB), copies only.

        Why: below the cutoff rclone sends each object as one streamed PUT and hashes nothing; above it, it
        uploads parts with an MD5 each, as every multipart copier must send some integrity header. The
        4 x 128 MiB shape of the targets sits just below; this one shows the other side. Informative: no
        target is computed on it."""
        e = self.env
        base = f"{self.run_id}/{shape.name}"

        def hdh(rep: int) -> None:
            self.measure(shape, "hdh_copy", rep, e.hdh_copy(shape.prefix, f"{base}/hdh/{rep}/",
                                                            f"w-{shape.name}-c{rep}"), e.hdh_env())

        def rclone(rep: int) -> None:
            self.measure(shape, "rclone_copy", rep, e.rclone_copy(shape.name, f"{base}/rclone/{rep}"),
                         e.rclone_env())

        log(f"{shape.name}: {shape.describe()} ({shapes.human(shape.total)}), {self.args.reps} repetition(s), "
            "copies only")
        self.repetitions(shape, base, [hdh, rclone])

    def fresh_azurite(self, shape: Shape, env: dict[str, str]) -> None:
        """Restart the rig's Azurite (SeaweedFS stays up) and read the shape once, untimed.

        Why: the same 512 MiB copy cost Azurite 2.35-2.8 CPU-s in every repetition of runs made an hour or
        more into its uptime, against 0.7-0.9 CPU-s in most copies after a restart: in the expensive ones a
        V8 major garbage collection takes half of its CPU (perf: ConcurrentMarking, Sweeper). A store
        aged by the runs before would tax whichever contender came later; Azure itself does not age so."""
        rig.stop_service("azurite")
        rig.up(quiet=True)
        measure.run("warm-up", self.env.azure_read_limit(shape.prefix), env=env)

    def warm_up(self, shape: Shape) -> None:
        """Run every tool once on a tiny shape, untimed: bytecode caches, server-side caches, connections."""
        e = self.env
        base = f"{self.run_id}/warm"
        log("warm-up (untimed)")
        cmds = [(e.hdh_copy(shape.prefix, f"{base}/hdh/", "w-warm-c"), e.hdh_env()),
                (e.hdh_verify(shape.prefix, f"{base}/hdh/", "w-warm-v"), e.hdh_env()),
                (e.rclone_copy(shape.name, f"{base}/rclone"), e.rclone_env()),
                (e.azure_read_limit(shape.prefix), e.hdh_env())]
        if self.args.proto:
            cmds.append((e.hdh_copy(shape.prefix, f"{base}/proto/", "w-warm-pc", proto=self.args.proto),
                         e.hdh_env()))
        if not self.args.skip_airflow:
            cmds.append((e.airflow_op(shape.prefix, f"{base}/airflow"), e.airflow_env()))
        for argv, env in cmds:
            r = measure.run("warm-up", argv, env=env)
            if r.rc != 0:
                self.failures.append(f"warm-up {argv[:3]}: exit {r.rc}: {r.stderr.strip()[-300:]}")
        tools.delete_prefix(f"{base}/")

    def scale(self, shape: Shape) -> None:
        """100,000 small objects: listing (the inventory) and the whole copy, once; memory is the point.

        They are read from the scale shape's own Azurite (bench/scalestore.py)."""
        e = self.env
        log(f"{shape.name}: {shape.describe()} -- listing and a full copy with hdh-migrate, once")
        log("  " + tools.vacuum_store())
        with scalestore.running(log) as conn:
            env = e.hdh_env() | {"AZURE_STORAGE_CONNECTION_STRING": conn}
            inv = [tools.HDH, "inventory", f"azure://{shapes.CONTAINER}/{shape.prefix}", "--out",
                   str(e.tmp / "scale-inventory.parquet")]
            self.measure(shape, "hdh_inventory", 1, inv, env)
            dest = f"{self.run_id}/{shape.name}/hdh/"
            self.measure(shape, "hdh_copy", 1, e.hdh_copy(shape.prefix, dest, "w-scale-c"), env)
        log("  " + tools.clear_and_settle(f"{self.run_id}/{shape.name}/"))

    def huge(self, shape: Shape) -> None:
        e = self.env
        budget = self.args.huge_budget
        log(f"{shape.name}: {shape.describe()} copied with --max-memory {budget}, once")
        log("  " + tools.vacuum_store())
        self.fresh_azurite(shape, e.hdh_env())
        dest = f"{self.run_id}/{shape.name}/hdh/"
        rec = self.measure(shape, "hdh_copy", 1, e.hdh_copy(shape.prefix, dest, "w-huge-c", ["--max-memory", budget]),
                           e.hdh_env())
        rec["max_memory"] = budget
        log("  " + tools.clear_and_settle(f"{self.run_id}/{shape.name}/"))

    def close(self) -> None:
        self.env.close()


# -- reduction and report -------------------------------------------------------------------------------
def med(runs: list[dict[str, Any]], shape: str, tool: str, key: str) -> float | None:
    vals = [r[key] for r in runs
            if r["shape"] == shape and r["tool"] == tool and r["rc"] == 0 and r.get(key) is not None]
    return round(statistics.median(vals), 3) if vals else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


TOOLS = ["limit_read", "limit_write", "hdh_copy", "hdh_verify", "hdh_copy_verify", "rclone_copy", "rclone_check",
         "rclone_copy_checked", "airflow_op",
         "hdh_inventory", "proto_copy", "proto_verify"]


def reduce(runs: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    large, small, scale, huge = names["large"], names["small"], names["scale"], names["huge"]
    table: dict[str, dict[str, Any]] = {}
    for shape in {r["shape"] for r in runs}:
        for tool in TOOLS:
            if not any(r["shape"] == shape and r["tool"] == tool for r in runs):
                continue
            table[f"{shape}/{tool}"] = {k: med(runs, shape, tool, k) for k in
                                        ("seconds", "mibps", "objps", "rss_mib", "cpu_s", "cpu_s_per_gib", "wall_s")}
            table[f"{shape}/{tool}"]["n"] = sum(1 for r in runs if r["shape"] == shape and r["tool"] == tool
                                                and r["rc"] == 0)

    def m(shape: str, tool: str, key: str) -> float | None:
        return table.get(f"{shape}/{tool}", {}).get(key)

    def lim(shape: str, key: str) -> float | None:
        vals = [v for v in (m(shape, "limit_read", key), m(shape, "limit_write", key)) if v is not None]
        return min(vals) if vals else None

    def pair_sum(shape: str, a: str, b: str) -> float | None:
        """Median over repetitions of (copy + verify) seconds, pairing the two runs of each repetition."""
        sums = []
        for rep in {r["rep"] for r in runs if r["shape"] == shape}:
            x = [r for r in runs if r["shape"] == shape and r["rep"] == rep and r["tool"] in (a, b) and r["rc"] == 0]
            if len(x) == 2:
                sums.append(x[0]["seconds"] + x[1]["seconds"])
        return round(statistics.median(sums), 3) if sums else None

    out: dict[str, Any] = {
        "large": {
            "shape": names["large_desc"],
            "hdh_mibps": m(large, "hdh_copy", "mibps"),
            "rclone_mibps": m(large, "rclone_copy", "mibps"),
            "rclone_checked_mibps": m(large, "rclone_copy_checked", "mibps"),
            "hdh_cpu_s": m(large, "hdh_copy", "cpu_s"),
            "rclone_cpu_s": m(large, "rclone_copy", "cpu_s"),
            "rclone_checked_cpu_s": m(large, "rclone_copy_checked", "cpu_s"),
            "airflow_op_mibps": m(large, "airflow_op", "mibps"),
            "limit_mibps": lim(large, "mibps"),
            "limit_read_mibps": m(large, "limit_read", "mibps"),
            "limit_write_mibps": m(large, "limit_write", "mibps"),
            "hdh_internal_mibps": None,
            "best_observed_mibps": _max(lim(large, "mibps"), m(large, "rclone_copy", "mibps"),
                                        m(large, "hdh_copy", "mibps"), m(large, "proto_copy", "mibps")),
        },
        "small": {
            "shape": names["small_desc"],
            "hdh_objps": m(small, "hdh_copy", "objps"),
            "rclone_objps": m(small, "rclone_copy", "objps"),
            "airflow_op_objps": m(small, "airflow_op", "objps"),
            "limit_objps": lim(small, "objps"),
            "limit_read_objps": m(small, "limit_read", "objps"),
            "limit_write_objps": m(small, "limit_write", "objps"),
            "best_observed_objps": _max(lim(small, "objps"), m(small, "rclone_copy", "objps"),
                                        m(small, "hdh_copy", "objps"), m(small, "proto_copy", "objps")),
        },
        "large_multipart": {
            "shape": names.get("multipart_desc"),
            "hdh_mibps": m(names.get("multipart", ""), "hdh_copy", "mibps"),
            "rclone_mibps": m(names.get("multipart", ""), "rclone_copy", "mibps"),
            "hdh_cpu_s": m(names.get("multipart", ""), "hdh_copy", "cpu_s"),
            "rclone_cpu_s": m(names.get("multipart", ""), "rclone_copy", "cpu_s"),
        },
        "verify": {
            # one command, `copy --verify full` (the two separate commands: hdh_copy_then_verify_s)
            "hdh_copy_verify_s": m(large, "hdh_copy_verify", "seconds"),
            "hdh_copy_then_verify_s": pair_sum(large, "hdh_copy", "hdh_verify"),
            "rclone_copy_check_s": pair_sum(large, "rclone_copy", "rclone_check"),
            "hdh_verify_s": m(large, "hdh_verify", "seconds"),
            "rclone_check_s": m(large, "rclone_check", "seconds"),
            "small_hdh_copy_verify_s": m(small, "hdh_copy_verify", "seconds"),
            "small_hdh_copy_then_verify_s": pair_sum(small, "hdh_copy", "hdh_verify"),
            "small_rclone_copy_check_s": pair_sum(small, "rclone_copy", "rclone_check"),
        },
        "rss_mib": {
            "hdh_1k": m(small, "hdh_copy", "rss_mib"),
            "hdh_100k": m(scale, "hdh_copy", "rss_mib"),
            "hdh_2gib": m(huge, "hdh_copy", "rss_mib"),
            "hdh_large": m(large, "hdh_copy", "rss_mib"),
            "hdh_100k_inventory": m(scale, "hdh_inventory", "rss_mib"),
            "rclone_large": m(large, "rclone_copy", "rss_mib"),
            "rclone_1k": m(small, "rclone_copy", "rss_mib"),
            "airflow_op_large": m(large, "airflow_op", "rss_mib"),
        },
        "scale": {
            "shape": names["scale_desc"],
            "hdh_objps": m(scale, "hdh_copy", "objps"),
            "hdh_copy_s": m(scale, "hdh_copy", "seconds"),
            "hdh_inventory_s": m(scale, "hdh_inventory", "seconds"),
        },
        "proto": {
            "large_mibps": m(large, "proto_copy", "mibps"), "small_objps": m(small, "proto_copy", "objps"),
            "large_copy_verify_s": pair_sum(large, "proto_copy", "proto_verify"),
            "small_copy_verify_s": pair_sum(small, "proto_copy", "proto_verify"),
            "large_cpu_s_per_gib": m(large, "proto_copy", "cpu_s_per_gib"),
            "small_cpu_s": m(small, "proto_copy", "cpu_s"),
        },
        "table": table,
    }
    hdh_int = [shape_total for shape_total in [names.get("large_total")] if shape_total]
    secs = [r["hdh_seconds"] for r in runs if r["shape"] == large and r["tool"] == "hdh_copy" and r["rc"] == 0
            and r.get("hdh_seconds")]
    if secs and hdh_int:
        out["large"]["hdh_internal_mibps"] = round(hdh_int[0] / MiB / statistics.median(secs), 2)
    L, S, V, R = out["large"], out["small"], out["verify"], out["rss_mib"]
    out["ratios"] = {
        "large_hdh_vs_limit": ratio(L["hdh_mibps"], L["limit_mibps"]),
        "large_hdh_vs_rclone": ratio(L["hdh_mibps"], L["rclone_mibps"]),
        "large_hdh_vs_rclone_checked": ratio(L["hdh_mibps"], L["rclone_checked_mibps"]),
        "large_hdh_vs_airflow_op": ratio(L["hdh_mibps"], L["airflow_op_mibps"]),
        "large_hdh_vs_best_observed": ratio(L["hdh_mibps"], L["best_observed_mibps"]),
        "small_hdh_vs_limit": ratio(S["hdh_objps"], S["limit_objps"]),
        "small_hdh_vs_rclone": ratio(S["hdh_objps"], S["rclone_objps"]),
        "small_hdh_vs_airflow_op": ratio(S["hdh_objps"], S["airflow_op_objps"]),
        "copy_verify_rclone_over_hdh_time": ratio(V["rclone_copy_check_s"], V["hdh_copy_verify_s"]),
        "large_multipart_hdh_vs_rclone": ratio(out["large_multipart"]["hdh_mibps"],
                                               out["large_multipart"]["rclone_mibps"]),
        "rss_100k_over_1k": ratio(R["hdh_100k"], R["hdh_1k"]),
        "rss_large_over_1k": ratio(R["hdh_large"], R["hdh_1k"]),
    }
    budget_mib = names.get("huge_budget_mib")

    def target(value: Any, ok: bool | None) -> dict[str, Any]:
        return {"value": value, "met": ok}

    rt = out["ratios"]
    out["targets"] = {
        "large >= 0.9 x limit": target(rt["large_hdh_vs_limit"], _ge(rt["large_hdh_vs_limit"], 0.9)),
        "large >= rclone": target(rt["large_hdh_vs_rclone"], _ge(rt["large_hdh_vs_rclone"], 1.0)),
        "small objects/s >= rclone": target(rt["small_hdh_vs_rclone"], _ge(rt["small_hdh_vs_rclone"], 1.0)),
        "copy+verify faster than rclone copy+check --download": target(
            rt["copy_verify_rclone_over_hdh_time"], _ge(rt["copy_verify_rclone_over_hdh_time"], 1.0, strict=True)),
        "large >= 2.5 x Airflow operator": target(rt["large_hdh_vs_airflow_op"],
                                                  _ge(rt["large_hdh_vs_airflow_op"], 2.5)),
        "small >= 3 x Airflow operator": target(rt["small_hdh_vs_airflow_op"],
                                                _ge(rt["small_hdh_vs_airflow_op"], 3.0)),
        "RSS 100k ~ RSS 1k (within 25%)": target(rt["rss_100k_over_1k"],
                                                  None if rt["rss_100k_over_1k"] is None else
                                                  rt["rss_100k_over_1k"] <= 1.25),
        "2 GiB object within the memory budget (RSS <= budget + 1k-object RSS)": target(
            R["hdh_2gib"], None if R["hdh_2gib"] is None or budget_mib is None or R["hdh_1k"] is None
            else R["hdh_2gib"] <= budget_mib + R["hdh_1k"]),
    }
    return out


def _max(*vals: float | None) -> float | None:
    got = [v for v in vals if v is not None]
    return max(got) if got else None


def _ge(v: float | None, t: float, strict: bool = False) -> bool | None:
    if v is None:
        return None
    return v > t if strict else v >= t


def _f(v: Any, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def print_report(res: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    p = print
    p("")
    p(f"{'shape/tool':32} {'n':>2} {'seconds':>8} {'MiB/s':>8} {'obj/s':>8} {'RSS MiB':>8} {'CPU s':>7} "
      f"{'CPU s/GiB':>9}")
    for key in sorted(res["table"], key=lambda k: (k.split("/")[0], TOOLS.index(k.split("/")[1]))):
        t = res["table"][key]
        p(f"{key:32} {t['n']:>2} {_f(t['seconds'], '{:.2f}'):>8} {_f(t['mibps']):>8} {_f(t['objps']):>8} "
          f"{_f(t['rss_mib'], '{:.0f}'):>8} {_f(t['cpu_s'], '{:.2f}'):>7} {_f(t['cpu_s_per_gib'], '{:.1f}'):>9}")
    L, S, V, R = res["large"], res["small"], res["verify"], res["rss_mib"]
    p("")
    p(f"large ({L['shape']}): hdh {_f(L['hdh_mibps'])} MiB/s (copy phase alone {_f(L['hdh_internal_mibps'])}), "
      f"rclone {_f(L['rclone_mibps'])}, Airflow operator {_f(L['airflow_op_mibps'])}, store limit "
      f"{_f(L['limit_mibps'])} (read {_f(L['limit_read_mibps'])}, write {_f(L['limit_write_mibps'])})")
    if L.get("rclone_checked_mibps"):
        p(f"large, rclone made to check every part (--s3-upload-cutoff {tools.RCLONE_CHECKED_CUTOFF // MiB}M: parts "
          "with Content-MD5, informative): "
          f"{_f(L['rclone_checked_mibps'])} MiB/s ({_f(L.get('rclone_checked_cpu_s'), '{:.2f}')} CPU s), "
          f"against rclone's default single unchecked PUTs {_f(L['rclone_mibps'])} "
          f"({_f(L.get('rclone_cpu_s'), '{:.2f}')} CPU s) and hdh {_f(L['hdh_mibps'])} "
          f"({_f(L.get('hdh_cpu_s'), '{:.2f}')} CPU s)")
    LM = res.get("large_multipart") or {}
    if LM.get("hdh_mibps") or LM.get("rclone_mibps"):
        p(f"large, above rclone's 200 MiB single-PUT cutoff ({LM['shape']}, informative): hdh "
          f"{_f(LM['hdh_mibps'])} MiB/s ({_f(LM['hdh_cpu_s'], '{:.2f}')} CPU s), rclone {_f(LM['rclone_mibps'])} "
          f"({_f(LM['rclone_cpu_s'], '{:.2f}')} CPU s)")
    p(f"small ({S['shape']}): hdh {_f(S['hdh_objps'])} obj/s, rclone {_f(S['rclone_objps'])}, Airflow operator "
      f"{_f(S['airflow_op_objps'])}, store limit {_f(S['limit_objps'])}")
    p(f"copy + full verification, large: hdh copy --verify full {_f(V['hdh_copy_verify_s'], '{:.2f}')} s "
      f"(copy, then verify: {_f(V['hdh_copy_then_verify_s'], '{:.2f}')} s), rclone copy + check --download "
      f"{_f(V['rclone_copy_check_s'], '{:.2f}')} s; small: hdh {_f(V['small_hdh_copy_verify_s'], '{:.2f}')} s "
      f"({_f(V['small_hdh_copy_then_verify_s'], '{:.2f}')} s), rclone {_f(V['small_rclone_copy_check_s'], '{:.2f}')} s")
    p(f"peak RSS of hdh copy: 1k objects {_f(R['hdh_1k'], '{:.0f}')} MiB, 100k objects {_f(R['hdh_100k'], '{:.0f}')}, "
      f"4 large objects {_f(R['hdh_large'], '{:.0f}')}, one 2 GiB object {_f(R['hdh_2gib'], '{:.0f}')}")
    p(f"best copy rate observed in this run (limit or any copier): large {_f(L['best_observed_mibps'])} MiB/s, "
      f"small {_f(S['best_observed_objps'])} obj/s")
    P = res.get("proto") or {}
    if P.get("large_mibps") or P.get("small_objps"):
        p(f"prototype engine (--proto): large {_f(P['large_mibps'])} MiB/s ({_f(P['large_cpu_s_per_gib'])} CPU s/GiB), "
          f"small {_f(P['small_objps'])} obj/s; copy + verify: large {_f(P['large_copy_verify_s'], '{:.2f}')} s, "
          f"small {_f(P['small_copy_verify_s'], '{:.2f}')} s")
    p("")
    p("ratios:")
    for k, v in res["ratios"].items():
        p(f"  {k:40} {_f(v, '{:.2f}')}")
    p("targets:")
    for k, v in res["targets"].items():
        verdict = {True: "MET", False: "MISSED", None: "not measured"}[v["met"]]
        p(f"  {verdict:12} {k} ({_f(v['value'], '{:.2f}')})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one repetition, smaller shapes (development)")
    ap.add_argument("--reps", type=int, help="repetitions of each comparison (default 3, 1 with --quick)")
    ap.add_argument("--skip-airflow", action="store_true", help="leave out the Airflow operator")
    ap.add_argument("--skip-scale", action="store_true", help="leave out the 100,000-object run")
    ap.add_argument("--skip-huge", action="store_true", help="leave out the 2 GiB object")
    ap.add_argument("--skip-multipart", action="store_true",
                    help="leave out the 4 x 256 MiB copies (above rclone's single-PUT cutoff; informative)")
    ap.add_argument("--only", choices=("large", "small"), help="only this comparison (and no scale/huge runs)")
    ap.add_argument("--huge-budget", default="256MiB", help="--max-memory for the 2 GiB object (default 256MiB)")
    ap.add_argument("--proto", metavar="DIR",
                    help="also measure a prototype of the engine: a folder holding a modified copy of the hdh_migrate "
                    "package (DIR/hdh_migrate, put first on sys.path); reported as proto_*, never used "
                    "for the targets")
    ap.add_argument("--out", default=str(RESULTS), help="where the JSON results go (default bench/results)")
    ap.add_argument("--report", metavar="JSON", help="re-reduce and print a saved results file (no measuring)")
    args = ap.parse_args(argv)
    if args.report:
        return report(Path(args.report))
    args.reps = args.reps or (1 if args.quick else 3)
    q = "-quick" if args.quick else ""
    picked = {"large": shapes.SHAPES[f"large{q}"], "small": shapes.SHAPES[f"small{q}"],
              "scale": shapes.SHAPES[f"scale{q}"], "huge": shapes.SHAPES["huge"]}
    do_huge = not (args.skip_huge or args.quick or args.only)
    do_multipart = not (args.skip_multipart or args.quick or args.only)
    multipart = shapes.SHAPES["large-multipart"]
    do_scale = not (args.skip_scale or args.only)

    t0 = time.monotonic()
    rig.up(quiet=True)
    conn = rig.env()["AZURE_STORAGE_CONNECTION_STRING"]
    from hdh_migrate.stores import S3Store, open_store
    from hdh_migrate.stores.settings import s3_settings_from_env

    bucket = open_store(f"s3://{tools.BUCKET}/", s3=s3_settings_from_env(rig.env()))
    assert isinstance(bucket, S3Store)
    bucket.create_bucket()
    tools.ensure_rclone(log)
    wanted = [shapes.SHAPES["warm"], picked["large"], picked["small"]] + ([picked["huge"]] if do_huge else []) \
        + ([multipart] if do_multipart else [])
    for s in wanted:
        shapes.seed(conn, s, log=log)
    # the 100,000-blob shape lives in an Azurite of its own (bench/scalestore.py), never in the rig's
    shapes.unseed(conn, picked["scale"], log=log)
    if do_scale:
        with scalestore.running(log) as scale_conn:
            shapes.seed(scale_conn, picked["scale"], log=log)
    t_seeded = time.monotonic()

    bench = Bench(args)
    log(f"bench {bench.run_id}: results under s3://{tools.BUCKET}/{bench.run_id}/ (deleted after each part)")
    try:
        bench.warm_up(shapes.SHAPES["warm"])
        if args.only in (None, "large"):
            bench.compare(picked["large"])
        if do_multipart:
            bench.compare_multipart(multipart)
        if args.only in (None, "small"):
            bench.compare(picked["small"])
        if do_scale:
            bench.scale(picked["scale"])
        if do_huge:
            bench.huge(picked["huge"])
    finally:
        bench.close()
    names = {
        "large": picked["large"].name, "small": picked["small"].name, "scale": picked["scale"].name,
        "huge": picked["huge"].name, "large_desc": picked["large"].describe(),
        "small_desc": picked["small"].describe(), "scale_desc": picked["scale"].describe(),
        "large_total": picked["large"].total, "huge_budget_mib": _mib(args.huge_budget),
        "multipart": multipart.name, "multipart_desc": multipart.describe(),
    }
    res = reduce(bench.runs, names)
    res = {
        "names": names,
        "run_id": bench.run_id,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "repetitions": args.reps,
        "machine": _machine(),
        "versions": _versions(),
        "settings": {
            "hdh": "defaults: --workers 8 --part-size 8MiB --max-memory 512MiB",
            "rclone_copy": tools.RCLONE_COPY_FLAGS, "rclone_check": ["--download", *tools.RCLONE_CHECK_FLAGS],
            "rclone_write_limit": tools.RCLONE_LIMIT_FLAGS, "azure_read_limit": "bench.azread: 8 threads, 8 MiB ranges",
            "airflow_op": "AzureBlobStorageToS3Operator(replace=False).execute(), execute() timed only",
            "huge_max_memory": args.huge_budget,
            "python": "bytecode cached (PYTHONPYCACHEPREFIX), PYTHONDONTWRITEBYTECODE unset for the measured tools",
            "proto": args.proto,
        },
        "seeding_s": round(t_seeded - t0, 1),
        "bench_s": round(time.monotonic() - t_seeded, 1),
    } | res | {"failures": bench.failures, "runs": bench.runs}
    print_report(res, bench.runs)
    if bench.failures:
        print("\nfailures:")
        for f in bench.failures:
            print(f"  {f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = bench.run_id.removeprefix("run-")
    kind = run_kind(args, failed=bool(bench.failures))
    name = f"{stamp}{'' if kind == 'complete' else '-' + kind}.json"
    latest = "latest.json" if kind == "complete" else f"latest-{kind}.json"
    (out / name).write_text(json.dumps(res, indent=2, default=str) + "\n")
    shutil.copyfile(out / name, out / latest)
    print(f"\nresults: {out / name} (and {latest}); "
          f"measuring took {res['bench_s']:.0f} s, seeding {res['seeding_s']:.0f} s")
    return 0 if not bench.failures else 1


def run_kind(args: argparse.Namespace, *, failed: bool) -> str:
    """Which latest-*.json a run may replace. Why: latest.json is the committed record of the targets, so
    only a complete run with no failed contender replaces it; a run that measured a part of the bench
    (--only, a --skip-*) or lost a contender would otherwise pass for one."""
    if args.quick:
        return "quick"
    partial = args.only or args.skip_airflow or args.skip_scale or args.skip_huge or args.skip_multipart
    return "partial" if partial or failed else "complete"


def report(path: Path) -> int:
    """Recompute medians, ratios and targets from the runs saved in a results file, print them, update it."""
    saved = json.loads(path.read_text())
    names = saved.get("names") or _names(saved)
    res = saved | {"names": names} | reduce(saved["runs"], names)
    print_report(res, saved["runs"])
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


def _names(saved: dict[str, Any]) -> dict[str, Any]:
    q = "-quick" if saved.get("quick") else ""
    picked = {k: shapes.SHAPES[f"{k}{q}"] for k in ("large", "small", "scale")} | {"huge": shapes.SHAPES["huge"]}
    return {
        "large": picked["large"].name, "small": picked["small"].name, "scale": picked["scale"].name,
        "huge": picked["huge"].name, "large_desc": picked["large"].describe(),
        "small_desc": picked["small"].describe(), "scale_desc": picked["scale"].describe(),
        "large_total": picked["large"].total,
        "huge_budget_mib": _mib(saved.get("settings", {}).get("huge_max_memory", "256MiB")),
    }


def _mib(text: str) -> float:
    from hdh_migrate.sizes import parse_size

    return parse_size(text) / MiB


def _machine() -> dict[str, Any]:
    import os
    import platform

    import psutil

    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / GiB, 1),
            "platform": platform.platform(), "python": platform.python_version()}


def _versions() -> dict[str, str]:
    import subprocess
    from importlib.metadata import version

    out = {}
    for pkg in ("hdh-migrate", "boto3", "azure-storage-blob", "apache-airflow", "apache-airflow-providers-amazon",
                "apache-airflow-providers-microsoft-azure"):
        try:
            out[pkg] = version(pkg)
        except Exception:
            out[pkg] = "?"
    try:
        root = Path(__file__).resolve().parents[1]
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root)
        dirty = subprocess.run(["git", "status", "--short", "hdh_migrate"], capture_output=True, text=True, cwd=root)
        out["hdh-migrate git"] = head.stdout.strip() + (" + uncommitted changes in hdh_migrate/"
                                                        if dirty.stdout.strip() else "")
    except OSError:
        pass
    try:
        out["rclone"] = subprocess.run(["rclone", "version"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        out["rclone"] = "?"
    return out


if __name__ == "__main__":
    sys.exit(main())
