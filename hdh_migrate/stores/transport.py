"""What the transports of every backend share: how a store's refusal travels, and which transport a store uses.

A backend (``stores/azure/``, ``stores/s3/``) sends its requests through one of two transports, chosen once
when the store is opened: the direct HTTP path (``stores/direct.py``, which says why it exists) or the
vendor's SDK. Both report a store's error answer as a ``Refusal`` (status and error code); the backend maps
it to a typed error in one place (its ``errors.py``), whichever transport met it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from hdh_migrate.errors import ConfigError

DIRECT = "direct"
SDK = "sdk"

D = TypeVar("D")
S = TypeVar("S")


class Refusal(Exception):
    """The store answered a request with an error: its HTTP status and error code (x-ms-error-code, or the
    Code of an S3 error document). Status 0: no answer at all, the code naming what broke. Raised by the
    transports, never out of a store: the backend turns it into a typed error."""

    def __init__(self, status: int, code: str = "", message: str = "") -> None:
        super().__init__(status, code)
        self.status, self.code, self.message = status, code, message


def direct_enabled() -> bool:
    """``HDH_DIRECT_HTTP=0`` sends every request through the SDKs (for comparison, or if the direct path misbehaves)."""
    return os.environ.get("HDH_DIRECT_HTTP", "1").strip().lower() not in ("0", "false", "no", "off")


def choose(transport: str | None, direct: Callable[[], tuple[D | None, str]], sdk: S, where: str) -> D | S:
    """The transport a store uses, decided once when it is opened.

    transport: "direct", "sdk", or None for the default: the direct path unless ``HDH_DIRECT_HTTP=0`` or it
    cannot serve these settings (direct() returns None and why), the SDK then. Asking for "direct" where it
    cannot serve is a ConfigError that says why."""
    if transport not in (None, DIRECT, SDK):
        raise ConfigError(f"unknown store transport {transport!r}", hint=f"use {DIRECT!r}, {SDK!r} or None")
    if transport == SDK or (transport is None and not direct_enabled()):
        return sdk
    opened, why = direct()
    if opened is not None:
        return opened
    if transport == DIRECT:
        raise ConfigError(
            f"the direct HTTP path cannot serve {where}: {why}",
            hint="open the store with the SDK transport (the default chooses it by itself in this case)",
        )
    return sdk
