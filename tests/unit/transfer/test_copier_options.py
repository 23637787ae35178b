"""Copy options: part sizing under S3 limits, budgets that cannot hold two parts refused."""

from __future__ import annotations

import pytest

from hdh_migrate.errors import ConfigError
from hdh_migrate.sizes import GiB, MiB, TiB
from hdh_migrate.transfer.copier import MAX_PARTS, CopyOptions, part_size_for


def test_part_size_grows_to_respect_the_10000_part_limit() -> None:
    assert part_size_for(100 * MiB, 8 * MiB) == 8 * MiB
    assert part_size_for(1, 1 * MiB) == 5 * MiB  # S3 minimum
    for size in (80 * GiB, 1 * TiB, 5 * TiB):
        part = part_size_for(size, 8 * MiB)
        assert -(-size // part) <= MAX_PARTS
        assert part % MiB == 0


def test_copy_options_refuse_a_budget_smaller_than_two_parts() -> None:
    with pytest.raises(ConfigError, match="max-memory"):
        CopyOptions(part_size=64 * MiB, max_memory=100 * MiB).validate()
    with pytest.raises(ConfigError, match="part size"):
        CopyOptions(part_size=1 * MiB).validate()
