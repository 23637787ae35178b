"""Helpers shared by the tests: run the real CLI, make deterministic bytes."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "hdh-migrate")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `hdh-migrate ARGS` as a user would; returns the finished process (stdout/stderr as text)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False)


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def remote_addresses(pids: list[int]) -> set[str]:
    """The remote ends of every inet socket these processes (and their children) hold open."""
    import psutil

    out: set[str] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            with contextlib.suppress(psutil.Error):  # a short-lived task process that ended meanwhile
                out |= {c.raddr.ip for c in p.net_connections(kind="inet") if c.raddr}
    return out


def beyond_loopback(addresses: set[str]) -> set[str]:
    import ipaddress

    return {a for a in addresses if not ipaddress.ip_address(a).is_loopback}
