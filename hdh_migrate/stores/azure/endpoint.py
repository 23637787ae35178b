"""Where an Azure container lives and how to sign for it, without importing the Azure SDK.

Why: the SDK's import alone (azure-core, its aiohttp transport, the generated models) costs ~0.2 s of CPU
in every command and every Airflow task, while the direct data path (stores/azure/direct.py) needs only a URL,
an account name and key, and a read/list container SAS. This module resolves those from the same settings
the SDK takes, with the SDK's own rules (``parse_connection_str``, ``StorageAccountHostsMixin``), and
signs the SAS with the service-SAS string-to-sign the SDK uses; tests compare both with the SDK's answers.
Anything it does not recognise (an Entra ID token, an unusual URL) resolves to None, and the store then
builds the SDK client and asks it instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from hdh_migrate.stores.settings import AzureSettings

# The REST API version of every direct request and SAS (the newest that azure-storage-blob 12.31 speaks;
# tests check that the installed SDK still lists it).
API_VERSION = "2026-10-06"

# Azurite's well-known development account ("UseDevelopmentStorage=true"), public by design.
DEVSTORE_ACCOUNT = "devstoreaccount1"
DEVSTORE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEVSTORE_URL = "http://127.0.0.1:10000/devstoreaccount1"


@dataclass(frozen=True)
class AzureEndpoint:
    account_url: str  # scheme://host[:port][/account], no trailing slash
    account_name: str | None
    account_key: str | None
    sas_token: str | None  # without the leading "?"

    def container_url(self, container: str) -> str:
        return f"{self.account_url}/{quote(container)}"


def _account_from_url(url: str) -> str | None:
    """The account name the SDK derives from an account URL (None where it would need the credential)."""
    parts = urlsplit(url)
    account = parts.netloc.split(".blob.core.")
    if len(account) > 1:
        name = account[0]
        # "<account>-secondary" names the same account
        return name[: name.find("-secondary")] if "-secondary" in name else name
    if parts.netloc.startswith(("localhost", "127.0.0.1")):
        return parts.path.strip("/") or None
    return None


def _parse_connection_string(text: str) -> dict[str, str] | None:
    pairs = [p.split("=", 1) for p in text.rstrip(";").split(";")]
    if any(len(p) != 2 for p in pairs):
        return None  # the SDK raises a clear ValueError: let it
    return {k.upper(): v for k, v in pairs}


def resolve(settings: AzureSettings) -> AzureEndpoint | None:
    """The endpoint and credential the SDK would use for these settings, or None to leave it to the SDK."""
    key: str | None = None
    sas: str | None = None
    name: str | None = None
    if settings.connection_string:
        conn = _parse_connection_string(settings.connection_string.get())
        if conn is None:
            return None
        if conn.get("USEDEVELOPMENTSTORAGE") == "true":
            return AzureEndpoint(DEVSTORE_URL, DEVSTORE_ACCOUNT, DEVSTORE_KEY, None)
        if "BLOBENDPOINT" in conn:
            url = conn["BLOBENDPOINT"]
        elif "ACCOUNTNAME" in conn and "DEFAULTENDPOINTSPROTOCOL" in conn and "ENDPOINTSUFFIX" in conn:
            url = f"{conn['DEFAULTENDPOINTSPROTOCOL']}://{conn['ACCOUNTNAME']}.blob.{conn['ENDPOINTSUFFIX']}"
        elif "ACCOUNTNAME" in conn:
            url = f"https://{conn['ACCOUNTNAME']}.blob.{conn.get('ENDPOINTSUFFIX', 'core.windows.net')}"
        else:
            return None
        if "ACCOUNTNAME" in conn and "ACCOUNTKEY" in conn:
            name, key = conn["ACCOUNTNAME"], conn["ACCOUNTKEY"]
        else:
            sas = conn.get("SHAREDACCESSSIGNATURE")
    elif settings.account_url:
        url = settings.account_url
        if settings.account_key:
            key = settings.account_key.get()
        elif settings.sas_token:
            sas = settings.sas_token.get()
    else:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return None
    name = name or _account_from_url(url)
    if key is not None and not name:
        return None
    if key is None and not sas:
        return None  # an Entra ID token: only the SDK (azure-identity) can sign
    base = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    return AzureEndpoint(base, name, key, sas.lstrip("?") if sas else None)


def _utc(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def container_sas(
    account_name: str,
    account_key: str,
    container: str,
    *,
    permission: str,
    start: datetime,
    expiry: datetime,
    version: str = API_VERSION,
) -> str:
    """A service SAS for a container (sr=c), as ``generate_container_sas`` makes it for these arguments."""
    fields = {"st": _utc(start), "se": _utc(expiry), "sp": permission, "sv": version, "sr": "c"}
    # the service-SAS string-to-sign: sp, st, se, canonical resource, si, sip, spr, sv, sr, snapshot time,
    # encryption scope, then the five response-header overrides (all empty here)
    to_sign = "\n".join(
        [permission, fields["st"], fields["se"], f"/blob/{account_name}/{container}", "", "", "", version, "c", "", ""]
        + [""] * 5
    )
    digest = hmac.new(base64.b64decode(account_key), to_sign.encode("utf-8"), hashlib.sha256).digest()
    fields["sig"] = base64.b64encode(digest).decode("ascii")
    return "&".join(f"{k}={quote(v)}" for k, v in fields.items())
