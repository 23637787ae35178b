"""Running one tool as a subprocess and measuring it: wall time, peak RSS, CPU seconds, and the stores' CPU.

Peak RSS and CPU come from GNU time (``/usr/bin/time``, Debian package ``time``, installed if missing), which
reports its child's rusage: the peak resident set of the tool (or its largest descendant) and the user +
system CPU of the tool and its descendants. (Our own ``wait4`` would not do: a child forked from this
Python process starts with this process's resident set as its ``ru_maxrss``.) The CPU the two servers
(Azurite, SeaweedFS) burn meanwhile is sampled from /proc through psutil, so a run shows where the
machine's two cores went.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil


@dataclass
class Run:
    label: str
    wall_s: float
    rc: int
    rss_mib: float
    cpu_s: float
    store_cpu_s: dict[str, float]
    stdout: str
    stderr: str
    extra: dict[str, Any] = field(default_factory=dict)

    def ok(self) -> bool:
        return self.rc == 0


def _tree_cpu(pid: int) -> float:
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for q in procs:
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def store_pids() -> dict[str, int]:
    from hdh_migrate.dev import rig

    from . import scalestore

    pids = {name: int(s["pid"]) for name, s in rig.status().items() if s["pid"]}  # type: ignore[call-overload]
    scale = scalestore.running_pid()  # the scale shape's own Azurite, while it runs
    if scale is not None:
        pids[scalestore.NAME] = scale
    return pids


def ensure_time() -> str:
    if not os.path.exists("/usr/bin/time"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "time"], check=True, env=env, stdout=subprocess.DEVNULL)
    return "/usr/bin/time"


def run(label: str, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
        timeout: float = 3600) -> Run:
    stores = store_pids()
    before = {k: _tree_cpu(v) for k, v in stores.items()}
    fd, timefile = tempfile.mkstemp(prefix="hdh-bench-time-")
    os.close(fd)
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(argv[0])
    argv = [ensure_time(), "-q", "-o", timefile, "-f", "%M %U %S", *argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        deadline = start + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    after = {k: _tree_cpu(v) for k, v in stores.items()}
    try:
        fields = Path(timefile).read_text().split()[-3:]
        rss_kib, user, system = int(fields[0]), float(fields[1]), float(fields[2])
    except (OSError, ValueError, IndexError):
        rss_kib, user, system = 0, ru.ru_utime, ru.ru_stime
    os.unlink(timefile)
    return Run(
        label=label, wall_s=wall, rc=proc.returncode, rss_mib=rss_kib / 1024, cpu_s=user + system,
        store_cpu_s={k: round(after[k] - before[k], 2) for k in stores}, stdout=stdout, stderr=stderr,
    )
