"""Structured logs: one JSON object per line, with the invoice and workflow ids.

temporalio's `workflow.logger` and `activity.logger` put the workflow and activity
identity in the record's `temporal_workflow` / `temporal_activity` extras; the
formatter lifts the ids to top-level fields and derives `invoice_id` from the
business workflow id `invoice-<id>`.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from settings import Settings

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        temporal = getattr(record, "temporal_workflow", None) or getattr(
            record, "temporal_activity", None) or {}
        for key in ("workflow_id", "run_id", "workflow_type", "activity_type", "attempt",
                    "task_queue", "namespace"):
            if key in temporal:
                entry[key] = temporal[key]
        workflow_id = str(entry.get("workflow_id") or getattr(record, "workflow_id", ""))
        if workflow_id.startswith("invoice-") and workflow_id[8:].isdigit():
            entry["invoice_id"] = int(workflow_id[8:])
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("temporal_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


class ActivityLogInterceptor(Interceptor):
    """One log line per finished activity attempt, through `activity.logger`, so
    the JSON line carries the workflow id (hence the invoice id) and the attempt."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLog(next)


class _ActivityLog(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started = time.monotonic()
        try:
            result = await super().execute_activity(input)
        except Exception as err:
            activity.logger.warning("activity failed: %s", err, extra={
                "duration_ms": round((time.monotonic() - started) * 1000)})
            raise
        status = getattr(result, "status", None)
        activity.logger.info("activity completed", extra={
            "duration_ms": round((time.monotonic() - started) * 1000),
            **({"outcome": status} if isinstance(status, str) else {})})
        return result
