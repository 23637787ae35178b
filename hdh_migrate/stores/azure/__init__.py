"""The Azure Blob Storage backend: the store (store.py), its typed errors (errors.py), its two transports (direct.py,
sdk.py), and where an account lives and how to sign for it without the SDK (endpoint.py)."""

from hdh_migrate.stores.azure.store import AzureBlobStore

__all__ = ["AzureBlobStore"]
