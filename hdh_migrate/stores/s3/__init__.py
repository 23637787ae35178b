"""The S3-compatible backend: the store (store.py), its typed errors (errors.py) and its two transports (direct.py,
boto3 in sdk.py); per-provider behaviour comes from S3Settings (stores/settings.py, data/s3_providers.json)."""

from hdh_migrate.stores.s3.store import S3Store, b64

__all__ = ["S3Store", "b64"]
