"""Short, real dunning cycles on the dev server: the B2B policy with its steps one
policy day apart (a wider gap after the call step, to answer the call task),
and a policy day of one second, so a whole cycle takes about ten seconds."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from dunning_client.start import dunning_input, workflow_id
from ledger.models import Customer, Invoice
from rules.policy import B2B_DEFAULT, DunningPolicy
from settings import Settings
from workflows.dunning import DunningResult, DunningWorkflow

COMPACT_OFFSETS = [-1, 0, 1, 2, 6, 7, 8]


def compact_policy() -> DunningPolicy:
    steps = [replace(step, offset_days=offset)
             for step, offset in zip(B2B_DEFAULT.steps, COMPACT_OFFSETS, strict=True)]
    return replace(B2B_DEFAULT, code="b2b-compact", steps=steps)


async def start_compact(client: Client, engine: Engine, settings: Settings, task_queue: str,
                        invoice_id: int) -> WorkflowHandle[DunningWorkflow, DunningResult]:
    with Session(engine) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        customer = session.get(Customer, invoice.customer_id)
        assert customer is not None
        inp = replace(dunning_input(invoice, customer, settings), policy=compact_policy(),
                      day_seconds=1, gather_seconds=0)
    return await client.start_workflow(DunningWorkflow.run, inp, id=workflow_id(invoice_id),
                                       task_queue=task_queue)


async def wait_for_call_task(handle: WorkflowHandle[DunningWorkflow, DunningResult],
                             timeout: float = 20) -> int:
    async with asyncio.timeout(timeout):
        while True:
            try:
                status = await handle.query(DunningWorkflow.status)
            except RPCError as err:  # the worker's first poll has not reached the server
                if err.status != RPCStatusCode.FAILED_PRECONDITION:
                    raise
            else:
                if status.open_tasks:
                    return status.open_tasks[0]
            await asyncio.sleep(0.2)
