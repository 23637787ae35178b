"""S3 settings: provider profile then overrides; SSE-C keys validated and never shown."""

from __future__ import annotations

import pytest

from hdh_migrate.errors import ConfigError
from hdh_migrate.stores.settings import S3Settings, Secret, encryption_summary, s3_settings_from_env


def test_s3_settings_from_env_apply_profile_then_overrides() -> None:
    s = s3_settings_from_env({"HDH_S3_PROVIDER": "ovhcloud", "AWS_REGION": "gra"})
    assert (s.addressing_style, s.request_checksum_calculation, s.region) == ("virtual", "when_required", "gra")
    s = s3_settings_from_env({"HDH_S3_PROVIDER": "ovhcloud", "HDH_S3_ADDRESSING_STYLE": "path"})
    assert s.addressing_style == "path"
    with pytest.raises(ConfigError, match="unknown S3 provider"):
        s3_settings_from_env({"HDH_S3_PROVIDER": "nope"})


def test_sse_c_key_is_validated_and_never_shown() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        S3Settings(sse="sse-c", sse_c_key=Secret("c2hvcnQ="))
    import base64

    key = base64.b64encode(bytes(range(32))).decode()
    s = S3Settings(sse="sse-c", sse_c_key=Secret(key))
    summary = encryption_summary(s)
    assert summary["mode"] == "sse-c" and summary["sse_c_key_fingerprint"].startswith("sha256:")
    assert key not in repr(s) and key not in str(summary)
