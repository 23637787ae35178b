"""Helpers shared by the tests: run the real CLI, make deterministic bytes."""

from __future__ import annotations

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
