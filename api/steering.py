"""Workflow updates from HTTP: one place that turns Temporal's answers into the
API's. A rejected or failed update is a 409 with the workflow's own reason; an
ended workflow is a 409; an unreachable Temporal is a 503."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from dunning_client.start import workflow_id
from ledger.models import AuditEvent, Invoice


def _reason(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError | FailureError):
        return cause.message
    return str(cause or err)


def _audit_rejection(engine: Engine, invoice_id: int, update: str, actor: str,
                     reason: str) -> None:
    with Session(engine) as session:
        invoice = session.get(Invoice, invoice_id)
        session.add(AuditEvent(invoice_id=invoice_id,
                               customer_id=invoice.customer_id if invoice else None,
                               kind="update_rejected", actor=actor,
                               detail={"update": update, "reason": reason}))
        session.commit()


async def run_update(client: Client, engine: Engine, invoice_id: int, update: Any, arg: Any,
                     *, actor: str, rpc_timeout: float) -> Any:
    handle = client.get_workflow_handle(workflow_id(invoice_id))
    name = getattr(update, "__name__", str(update))
    try:
        return await handle.execute_update(update, arg,
                                           rpc_timeout=timedelta(seconds=rpc_timeout))
    except WorkflowUpdateFailedError as err:
        reason = _reason(err)
        await asyncio.to_thread(_audit_rejection, engine, invoice_id, name, actor, reason)
        raise ApiError(409, reason, "rejected_by_workflow") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(409, f"invoice {invoice_id} has no running dunning workflow "
                                "(it has ended or never started)", "workflow_not_running") from None
        raise ApiError(503, f"Temporal unavailable: {err.message}") from None
    except (RuntimeError, TimeoutError) as err:
        raise ApiError(503, f"Temporal unavailable: {err}") from None
