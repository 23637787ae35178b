"""``on_failure_callback``: one alert line an on-call operator can act on, to the log and a webhook.

Format (the runbook is written against it):
``HDH-MIGRATE ALERT dataset=<d> task=<t> shard=<n> error=<code>: <message> | log: <url>``
The webhook (``HDH_MIGRATE_ALERT_WEBHOOK``, e.g. a Mattermost/Teams/Slack incoming hook) receives
``{"text": <line>, "dataset", "task", "shard", "error", "log_url", "run_id"}`` as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.request
from typing import Any

log = logging.getLogger("hdh_migrate.alerts")

_CODE = re.compile(r"^\[([a-z_]+)\]\s*")


def error_code(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    m = _CODE.match(str(exc))
    if m:
        return m.group(1)
    cause = exc.__cause__
    return getattr(cause, "code", None) or type(exc).__name__


def format_alert(context: dict[str, Any]) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    params = context.get("params") or {}
    exc = context.get("exception")
    message = _CODE.sub("", str(exc or "failed")).strip()
    map_index = getattr(ti, "map_index", -1)
    shard = str(map_index + 1) if isinstance(map_index, int) and map_index >= 0 else "-"
    log_url = getattr(ti, "log_url", "") or ""
    task_id = getattr(ti, "task_id", "?")
    dataset = params.get("dataset", "?")
    code = error_code(exc)
    line = (
        f"HDH-MIGRATE ALERT dataset={dataset} task={task_id} shard={shard} error={code}: "
        f"{message[:1500]} | log: {log_url}"
    )
    run_id = getattr(context.get("dag_run"), "run_id", None) or context.get("run_id")
    return {
        "text": line,
        "dataset": dataset,
        "task": task_id,
        "shard": shard,
        "error": code,
        "log_url": log_url,
        "run_id": run_id,
    }


def on_failure(context: dict[str, Any]) -> None:
    alert = format_alert(context)
    log.error(alert["text"])
    url = os.environ.get("HDH_MIGRATE_ALERT_WEBHOOK")
    if not url:
        return
    req = urllib.request.Request(url, data=json.dumps(alert).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
    except OSError as exc:
        log.error("could not deliver the alert to the webhook: %s", exc)
