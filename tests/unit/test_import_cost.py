"""What a command pays for at import time."""

from __future__ import annotations


def test_copy_and_verify_modules_load_without_pyarrow() -> None:
    """pyarrow and numpy (~0.15 s) are imported by the job's manifest thread, not before the first transfer."""
    import subprocess
    import sys

    code = (
        "import sys, hdh_migrate.cli, hdh_migrate.runs.migration; "
        "print(sorted({'pyarrow', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
