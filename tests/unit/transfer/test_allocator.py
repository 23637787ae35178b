"""Allocator and BLAS settings of a hdh-migrate process."""

from __future__ import annotations


def test_allocator_tuning_applies_once_and_respects_explicit_variables(monkeypatch) -> None:
    import platform

    from hdh_migrate.transfer import allocator as memory

    monkeypatch.setattr(memory, "_done", False)
    applied = memory.tune_allocator()
    assert applied == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    assert memory.tune_allocator() is applied  # idempotent


def test_no_spinning_blas_threads_in_a_hdh_process() -> None:
    """pyarrow pulls in numpy, whose OpenBLAS would start a spinning thread per extra core; hdh-migrate needs none."""
    import os
    import subprocess
    import sys

    code = (
        "import os, hdh_migrate, pyarrow.parquet; "
        "print(sorted(open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.count("'python'") == 1, out  # the main thread only (OpenBLAS's threads take the process's name)
