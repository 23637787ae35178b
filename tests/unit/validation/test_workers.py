"""How a side's files are shared between processes (``--jobs``): whole groups, contiguous runs of about
the same bytes, and never so many runs that a worker's GX import costs more than its share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.validation.files import file_groups
from hdh_migrate.validation.workers import file_chunks


@pytest.mark.parametrize(
    ("sizes", "jobs", "expected"),
    [
        ([10, 10, 10, 10], 2, [2, 2]),
        ([100, 1, 1, 1], 3, [1, 1, 2]),
        ([1, 1, 1, 100], 2, [3, 1]),
        ([5, 5], 8, [1, 1]),  # no more runs than files
        ([7, 7, 7], 1, [3]),
        ([0, 0, 0, 0, 0, 0], 3, [2, 2, 2]),  # empty files still spread
    ],
)
def test_files_are_cut_into_contiguous_runs_of_about_the_same_bytes(
    sizes: list[int], jobs: int, expected: list[int]
) -> None:
    groups = [[f] for f in _files(sizes)]  # files of a group size or more: a group each
    chunks = file_chunks(groups, jobs)
    assert [len(c) for c in chunks] == expected
    assert [g for c in chunks for g in c] == groups  # every group once, in order


def _files(sizes: list[int]) -> list[ObjectInfo]:
    return [ObjectInfo(f"part-{i}", s, f"e{i}", datetime.now(UTC)) for i, s in enumerate(sizes)]


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([40, 40, 40], [1, 1, 1]),  # each file holds a group's bytes: each its own group
        ([10, 10, 10, 10, 10], [4, 1]),  # small files share a group until it holds 32
        ([5, 100, 5, 5], [2, 2]),
        ([0, 0, 0], [3]),
        ([], []),
    ],
)
def test_small_files_are_grouped_by_the_listing_alone(sizes: list[int], expected: list[int]) -> None:
    """Groups depend on names and sizes only, so the batches cannot depend on the number of processes."""
    files = _files(sizes)
    groups = file_groups(files, 32)
    assert [len(g) for g in groups] == expected
    assert [f for g in groups for f in g] == files
    for jobs in (2, 3):  # processes get whole groups
        assert [g for c in file_chunks(groups, jobs) for g in c] == groups


def test_a_worker_gets_a_group_s_worth_of_bytes_at_least() -> None:
    """A worker pays GX's import: 33 + 6 bytes with groups of 32 stay in one process, 40 + 40 do not."""
    for sizes, runs in (([33, 6], 1), ([40, 40], 2), ([40, 40, 40], 3), ([10] * 9, 2)):
        groups = file_groups(_files(sizes), 32)
        assert len(file_chunks(groups, 4, 32)) == runs, sizes
