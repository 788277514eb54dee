"""Workflow updates from HTTP: one place that turns Temporal's answers into the
API's. A rejected or failed update is a 409 with the workflow's own reason; an
ended workflow is a 409; an unreachable Temporal is a 503."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from dunning_client.customer import FanOutResult, update_refusal
from dunning_client.start import workflow_id
from ledger.models import AuditEvent, Invoice


def audit_rejection(engine: Engine, invoice_id: int, update: str, actor: str,
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
        reason = update_refusal(err)
        await asyncio.to_thread(audit_rejection, engine, invoice_id, name, actor, reason)
        raise ApiError(409, reason, "rejected_by_workflow") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(409, f"invoice {invoice_id} has no running dunning workflow "
                                "(it has ended or never started)", "workflow_not_running") from None
        raise ApiError(503, f"Temporal unavailable: {err.message}") from None
    except (RuntimeError, TimeoutError) as err:
        raise ApiError(503, f"Temporal unavailable: {err}") from None


class InvoiceResult(BaseModel):
    """What one invoice's workflow did with a customer-level action."""

    invoice_id: int
    invoice_number: str
    done: bool
    stage: str | None = Field(default=None, description="The invoice's stage after it")
    outcome: str | None = Field(default=None, description="For a call: the outcome recorded")
    reason: str | None = Field(default=None, description="Why the workflow refused")


def _numbers(engine: Engine, invoice_ids: list[int]) -> dict[int, str]:
    with Session(engine) as session:
        return {i.id or 0: i.number for i in session.exec(
            select(Invoice).where(col(Invoice.id).in_(invoice_ids)))}


async def report_fan_out(engine: Engine, result: FanOutResult, update: str, *, actor: str,
                         outcomes: dict[int, str] | None = None) -> list[InvoiceResult]:
    """Audit every refusal and report per invoice. Nothing done at all is an error:
    503 when Temporal was unreachable, else 409 with the workflows' reasons."""
    for invoice_id, reason in result.refused.items():
        await asyncio.to_thread(audit_rejection, engine, invoice_id, update, actor, reason)
    ids = result.done + list(result.refused)
    numbers = await asyncio.to_thread(_numbers, engine, ids)
    report = [InvoiceResult(invoice_id=i, invoice_number=numbers.get(i, ""),
                            done=i in result.stages, stage=result.stages.get(i),
                            outcome=(outcomes or {}).get(i) if i in result.stages else None,
                            reason=result.refused.get(i)) for i in sorted(ids)]
    if result.done:
        return report
    if result.unavailable:
        raise ApiError(503, next(iter(result.refused.values())))
    detail = [r.model_dump(exclude_none=True) for r in report]
    if len(report) == 1:
        reason = report[0].reason or ""
        code = "workflow_not_running" if "no running dunning workflow" in reason \
            else "rejected_by_workflow"
        raise ApiError(409, reason, code, detail)
    raise ApiError(409, f"every invoice's workflow refused {update}", "rejected_by_workflow",
                   detail)
