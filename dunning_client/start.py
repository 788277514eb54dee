"""Client side of the dunning workflow: connecting, registering search attributes,
and starting one workflow per open invoice, exactly once per invoice id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from dunning_client.converter import relance_data_converter
from ledger.models import Customer, Invoice, InvoiceStatus
from rules.calendar import public_holidays
from rules.policy import policy_for
from settings import Settings
from workflows.dunning import DunningInput, DunningWorkflow

SEARCH_ATTRIBUTES = {
    "RelanceStage": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "RelanceCustomer": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "RelanceAmountDue": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "RelanceNextActionAt": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """The process's Temporal client: payloads encrypted when codec keys are set,
    TLS and tracing as configured (a worker made from it inherits all three)."""
    from observability.tracing import temporal_interceptors
    from payload_codec import codec_from_key_spec, with_codec

    codec = codec_from_key_spec(settings.codec_keys, settings.codec_active_key)
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace,
        data_converter=with_codec(relance_data_converter, codec),
        tls=temporal_tls(settings), api_key=settings.temporal_api_key or None,
        interceptors=temporal_interceptors(settings), runtime=runtime)


def temporal_tls(settings: Settings) -> bool | TLSConfig:
    if not settings.temporal_tls:
        return False

    def read(path: str) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return TLSConfig(server_root_ca_cert=read(settings.temporal_tls_ca_path),
                     client_cert=read(settings.temporal_tls_cert_path),
                     client_private_key=read(settings.temporal_tls_key_path))


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Idempotent: only the attributes the server does not know yet are added."""
    try:
        known = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace))
        missing = {k: v for k, v in SEARCH_ATTRIBUTES.items()
                   if k not in known.custom_attributes}
    except RPCError as err:
        # The time-skipping test server cannot list them, only add them.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        missing = dict(SEARCH_ATTRIBUTES)
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))


def workflow_id(invoice_id: int) -> str:
    return f"invoice-{invoice_id}"


def dunning_input(invoice: Invoice, customer: Customer, settings: Settings) -> DunningInput:
    return DunningInput(
        invoice_id=invoice.id or 0,
        invoice_number=invoice.number,
        customer_ref=customer.ref,
        currency=invoice.currency,
        balance_cents=invoice.balance_cents,
        due_date=invoice.due_date,
        policy=policy_for(customer.segment, invoice.policy_code or customer.policy_code),
        day_seconds=settings.day_seconds,
        timezone=customer.timezone,
        send_hour=settings.send_hour,
        gather_seconds=settings.gather_seconds(),
        holidays=list(public_holidays(customer.country, invoice.due_date.year - 1,
                                      invoice.due_date.year + 2)),
    )


async def start_dunning(client: Client, engine: Engine, settings: Settings,
                        invoice_ids: Iterable[int],
                        concurrency: int = 100) -> list[WorkflowHandle[Any, Any]]:
    """Start `invoice-<id>` for each open invoice; an id already running or finished
    is left alone, so a second import starts nothing. Returns the handles of the
    workflows running for these invoices (started now or already running), in
    invoice id order whatever order the database returns rows in."""
    ids = list(invoice_ids)
    inputs: list[DunningInput] = []
    with Session(engine) as session:
        for chunk in range(0, len(ids), 500):
            rows = session.exec(
                select(Invoice, Customer)
                .join(Customer, Customer.id == Invoice.customer_id)  # type: ignore[arg-type]
                .where(Invoice.id.in_(ids[chunk:chunk + 500]))  # type: ignore[union-attr]
                .where(Invoice.status == InvoiceStatus.OPEN)
                .order_by(Invoice.id)  # type: ignore[arg-type]
            ).all()
            inputs.extend(dunning_input(inv, cust, settings) for inv, cust in rows)
    gate = asyncio.Semaphore(concurrency)

    async def start(inp: DunningInput) -> WorkflowHandle[Any, Any] | None:
        async with gate:
            try:
                return await client.start_workflow(
                    DunningWorkflow.run, inp, id=workflow_id(inp.invoice_id),
                    task_queue=settings.temporal_task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
            except WorkflowAlreadyStartedError:
                return None  # finished earlier: never dun a closed invoice again

    results = await asyncio.gather(*(start(i) for i in inputs))
    return [h for h in results if h is not None]
