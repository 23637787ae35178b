"""Build hdh-migrate settings from Airflow Connections, read through the providers' own hooks.

- source: a ``wasb`` Connection (microsoft-azure provider): extra ``connection_string``, or the account
  URL (host) / account name (login) with the key (password) or ``sas_token`` extra.
- destination: an ``aws`` Connection (amazon provider): credentials resolved by ``AwsBaseHook`` (keys,
  session tokens, assumed roles alike), ``endpoint_url`` and ``region_name`` from its extra, plus the
  hdh-migrate keys ``hdh_s3_provider``, ``hdh_addressing_style``, ``hdh_part_checksum``,
  ``hdh_payload_signing``, ``hdh_sse``,
  ``hdh_kms_key_id`` and ``hdh_sse_c_key_conn_id`` (a separate Connection whose password holds the
  SSE-C key, so the key never sits in an extra that someone may print).
No secret is logged, put in XCom, or returned.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from airflow.sdk.exceptions import AirflowNotFoundException

from hdh_migrate.errors import ConfigError, CredentialsError
from hdh_migrate.stores.settings import AzureSettings, S3Settings, Secret, s3_settings


def _connection(hook: Any, conn_id: str, kind: str) -> Any:
    try:
        return hook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConfigError(
            f"the Airflow Connection {conn_id!r} does not exist",
            hint=f"create it in Admin > Connections (type {kind}), or fix the connection id in the run's Params",
        ) from None


def azure_settings_from_connection(conn_id: str) -> AzureSettings:
    hook = WasbHook(wasb_conn_id=conn_id)
    conn = _connection(hook, conn_id, "wasb")
    extra = conn.extra_dejson or {}
    cs = extra.get("connection_string") or extra.get("extra__wasb__connection_string")
    if cs:
        return AzureSettings(connection_string=Secret(cs))
    url = conn.host or (f"https://{conn.login}.blob.core.windows.net" if conn.login else None)
    if not url:
        raise CredentialsError(
            f"the wasb Connection {conn_id!r} has neither a connection string nor an account",
            hint="set extra.connection_string, or host (account URL) with password (key) or extra.sas_token",
        )
    sas = extra.get("sas_token")
    return AzureSettings(
        account_url=url,
        account_key=Secret(conn.password) if conn.password else None,
        sas_token=Secret(sas) if sas else None,
    )


def s3_settings_from_connection(conn_id: str) -> S3Settings:
    hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3")
    conn = _connection(hook, conn_id, "aws")
    extra = conn.extra_dejson or {}
    creds = hook.get_credentials()
    key_conn = extra.get("hdh_sse_c_key_conn_id")
    sse_key = _connection(hook, key_conn, "generic").password if key_conn else None
    endpoint = hook.conn_config.endpoint_url or extra.get("endpoint_url")
    return s3_settings(
        provider=extra.get("hdh_s3_provider"),
        overrides={
            "endpoint_url": endpoint,
            "region": hook.conn_region_name or extra.get("region_name"),
            "access_key_id": creds.access_key,
            "secret_access_key": Secret(creds.secret_key) if creds.secret_key else None,
            "session_token": Secret(creds.token) if creds.token else None,
            "addressing_style": extra.get("hdh_addressing_style"),
            "part_checksum": extra.get("hdh_part_checksum"),
            "payload_signing": _flag(extra.get("hdh_payload_signing")),
            "request_checksum_calculation": extra.get("hdh_request_checksum_calculation"),
            "response_checksum_validation": extra.get("hdh_response_checksum_validation"),
            "sse": extra.get("hdh_sse") or ("sse-c" if sse_key else None),
            "sse_c_key": Secret(sse_key) if sse_key else None,
            "kms_key_id": extra.get("hdh_kms_key_id"),
        },
    )


def _flag(value: Any) -> bool | None:
    """A boolean Connection extra, whether the UI stored it as JSON true or as the string "true"."""
    if value is None or isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")
