"""The audit bundle: every file an auditor needs, in one folder that checks itself.

    report.json  report.html  evidence.parquet  evidence.csv
    data-docs/<table>/...      the Great Expectations Data Docs of both sides, links relative
    public-key.pem             the signing key's public half (compare it with the pinned one)
    VERIFY.txt                 how to check the folder with sha256sum and openssl only
    SHA256SUMS  SHA256SUMS.sig the SHA-256 of every other file, signed (Ed25519, raw signature)

The folder is written once (a retried report task starts from an empty folder, so nothing of an earlier
attempt is listed) and uploaded as is under ``_hdh-audit/<dataset>/<stamp>/``.
"""

from __future__ import annotations

import mimetypes
import shutil
from pathlib import Path
from typing import Any

import jinja2

from hdh_migrate.audit.signing import PUBLIC_KEY_FILE, SUMS, SUMS_SIG, SigningKey, write_sums

DATA_DOCS = "data-docs"
VERIFY_FILE = "VERIFY.txt"
TEMPLATES = Path(__file__).resolve().parent / "templates"
_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".pem": "application/x-pem-file",
    ".sig": "application/octet-stream",
}


def start(folder: Path) -> None:
    """An empty folder for the bundle."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def include_data_docs(validations: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """Copy each table's Data Docs site into ``data-docs/<table>/`` and point the validation at it with
    links relative to the bundle (the originals are ``file://`` paths on a worker). A site that cannot be
    found here is said so, never linked."""
    return [_with_docs(dict(v), folder) for v in validations]


def _with_docs(v: dict[str, Any], folder: Path) -> dict[str, Any]:
    v |= {"data_docs_included": False, "data_docs_missing": None}
    if not v.get("data_docs"):
        return v
    site = Path(v["data_docs"]).parent
    if not site.is_dir():
        return v | {
            "data_docs": None,
            "data_docs_pages": {},
            "data_docs_missing": "not on the machine that wrote the report (built on another worker)",
        }
    target = folder / DATA_DOCS / str(v.get("table"))
    shutil.copytree(site, target, dirs_exist_ok=True)
    pages = {
        side: (target / Path(p).relative_to(site)).relative_to(folder).as_posix()
        for side, p in (v.get("data_docs_pages") or {}).items()
        if Path(p).is_relative_to(site)
    }
    index = (target / "index.html").relative_to(folder).as_posix()
    return v | {"data_docs": index, "data_docs_pages": pages, "data_docs_included": True}


def finish(folder: Path, key: SigningKey, facts: dict[str, Any]) -> list[Path]:
    """The public key, VERIFY.txt, then SHA256SUMS and its signature over everything. Returns every file."""
    (folder / PUBLIC_KEY_FILE).write_bytes(key.public_pem)
    (folder / VERIFY_FILE).write_text(render_verify(facts | {"key_id": key.key_id}), encoding="utf-8")
    names = write_sums(folder, key)
    return [folder / n for n in [*names, SUMS, SUMS_SIG]]


def render_verify(facts: dict[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,  # plain text, read in a terminal
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("VERIFY.txt.j2").render(
        f=facts, key_hex=facts["key_id"].removeprefix("sha256:"), sums=SUMS, sig=SUMS_SIG, pem=PUBLIC_KEY_FILE
    )


def content_type(path: Path) -> str:
    return _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


__all__ = ["DATA_DOCS", "VERIFY_FILE", "content_type", "finish", "include_data_docs", "render_verify", "start"]
