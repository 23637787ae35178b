"""Sizes and locations, as a user types them."""

from __future__ import annotations

import pytest

from hdh_migrate.errors import ConfigError, MalformedURLError
from hdh_migrate.locations import parse_location
from hdh_migrate.sizes import GiB, MiB, parse_size


def test_sizes_parse_like_rclone() -> None:
    assert parse_size("8MiB") == 8 * MiB
    assert parse_size("8M") == 8 * MiB
    assert parse_size("1.5GiB") == int(1.5 * GiB)
    assert parse_size("1000") == 1000
    with pytest.raises(ConfigError, match="not a size"):
        parse_size("eight")


def test_locations_keep_prefix_as_folder() -> None:
    loc = parse_location("azure://snds-raw/dcir/2024")
    assert (loc.scheme, loc.container, loc.prefix) == ("azure", "snds-raw", "dcir/2024/")
    assert parse_location("s3://bucket-1").prefix == ""
    assert parse_location("s3://bucket-1/a/").key_for("x/y.parquet") == "a/x/y.parquet"


@pytest.mark.parametrize(
    "url", ["", "azure:/c/p", "http://c/p", "azure://Bad_Container/p", "s3://ab/p", "azure://ok-container/a//b"]
)
def test_malformed_locations_are_rejected(url: str) -> None:
    with pytest.raises(MalformedURLError):
        parse_location(url)
