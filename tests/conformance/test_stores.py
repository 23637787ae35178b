"""Every conformance check (hdh_migrate/stores/conformance.py) on every store (conftest.py): the real servers
through both transports, and the in-memory store held to what they do."""

from __future__ import annotations

import pytest

from hdh_migrate.stores import conformance
from hdh_migrate.stores.conformance import Target


@pytest.mark.parametrize("check", list(conformance.CHECKS))
def test_store_conforms(target: Target, check: str) -> None:
    try:
        conformance.CHECKS[check](target)
    except conformance.Skip as why:
        pytest.skip(str(why))
