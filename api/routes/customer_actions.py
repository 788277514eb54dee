"""A customer as a whole, for managers: one decision applied to every open
invoice through each invoice's own workflow (pause, resume, dispute, payment
plan) and transfers recorded by hand, each audited with who did it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client

from activities.payloads import Instalment
from api.deps import ApiUser, EngineDep, ManagerUser, SettingsDep, TemporalClientDep
from api.errors import ApiError, responses
from api.money import Currency, PositiveAmount, to_cents
from api.payments import IncomingPayment, accept_payment
from api.plans import customer_plan
from api.routes.customers import CustomerId, load_customer
from api.routes.invoices import StewardIn
from api.routes.tasks import InstalmentIn
from api.routes.webhooks import WebhookAck, webhook_ack
from api.steering import InvoiceResult, report_fan_out
from dunning_client.customer import agree_customer_plan, open_invoice_ids, steer_customer
from ledger.models import AuditEvent, Customer, Invoice
from settings import Settings
from workflows.dunning import StewardAction

router = APIRouter(prefix="/customers", tags=["customers"])


class CustomerActionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": 3, "action": "pause", "actor": "maria", "invoices": [
            {"invoice_id": 42, "invoice_number": "F-2026-0042", "done": True,
             "stage": "paused"},
            {"invoice_id": 44, "invoice_number": "F-2026-0044", "done": False,
             "reason": "dunning is already paused"}]}]})

    customer_id: int
    action: str
    actor: str
    invoices: list[InvoiceResult]


def _audit_customer(engine: Engine, customer_id: int, kind: str, actor: str,
                    detail: dict[str, Any]) -> None:
    with Session(engine) as session:
        session.add(AuditEvent(customer_id=customer_id, kind=kind, actor=actor, detail=detail))
        session.commit()


def _open_invoices(engine: Engine, customer_id: int) -> list[int]:
    with Session(engine) as session:
        load_customer(session, customer_id)
    ids = open_invoice_ids(engine, customer_id)
    if not ids:
        raise ApiError(409, f"customer {customer_id} has no open invoice", "no_open_invoice")
    return ids


async def _steer_customer(customer_id: int, action: str, update: str, reason: str,
                          user: ApiUser, engine: Engine, client: Client,
                          settings: Settings) -> CustomerActionOut:
    await asyncio.to_thread(_open_invoices, engine, customer_id)
    result = await steer_customer(client, engine, customer_id, update,
                                  StewardAction(actor=user.name, reason=reason),
                                  settings.temporal_rpc_timeout_seconds)
    report = await report_fan_out(engine, result, update, actor=user.name)
    await asyncio.to_thread(_audit_customer, engine, customer_id, f"customer_{action}",
                            user.name, {"reason": reason, "invoices": result.done,
                                        "refused": {str(k): v for k, v in result.refused.items()}})
    return CustomerActionOut(customer_id=customer_id, action=action, actor=user.name,
                             invoices=report)


CUSTOMER_ACTION_ERRORS = responses(401, 403, 404, 409, 422, 503)


@router.post("/{customer_id}/pause", response_model=CustomerActionOut,
             responses=CUSTOMER_ACTION_ERRORS)
async def pause_customer(customer_id: CustomerId, body: StewardIn, user: ManagerUser,
                         engine: EngineDep, client: TemporalClientDep,
                         settings: SettingsDep) -> CustomerActionOut:
    """Hold dunning on every open invoice of the customer (each invoice's `pause`
    update); an invoice that refuses (already paused) is reported, the others
    are paused. 409 if none could be."""
    return await _steer_customer(customer_id, "paused", "pause", body.reason, user, engine,
                                 client, settings)


@router.post("/{customer_id}/resume", response_model=CustomerActionOut,
             responses=CUSTOMER_ACTION_ERRORS)
async def resume_customer(customer_id: CustomerId, body: StewardIn, user: ManagerUser,
                          engine: EngineDep, client: TemporalClientDep,
                          settings: SettingsDep) -> CustomerActionOut:
    """Resume every paused open invoice of the customer."""
    return await _steer_customer(customer_id, "resumed", "resume", body.reason, user, engine,
                                 client, settings)


@router.post("/{customer_id}/dispute", response_model=CustomerActionOut,
             responses=CUSTOMER_ACTION_ERRORS)
async def dispute_customer(customer_id: CustomerId, body: StewardIn, user: ManagerUser,
                           engine: EngineDep, client: TemporalClientDep,
                           settings: SettingsDep) -> CustomerActionOut:
    """Open a dispute (a reason is required) on every open invoice of the customer."""
    if not body.reason.strip():
        raise ApiError(422, "a dispute needs a reason")
    return await _steer_customer(customer_id, "dispute_opened", "open_dispute", body.reason,
                                 user, engine, client, settings)


@router.post("/{customer_id}/resolve-dispute", response_model=CustomerActionOut,
             responses=CUSTOMER_ACTION_ERRORS)
async def resolve_customer_dispute(customer_id: CustomerId, body: StewardIn, user: ManagerUser,
                                   engine: EngineDep, client: TemporalClientDep,
                                   settings: SettingsDep) -> CustomerActionOut:
    """Resolve the dispute on every disputed open invoice of the customer."""
    return await _steer_customer(customer_id, "dispute_resolved", "resolve_dispute",
                                 body.reason, user, engine, client, settings)


class CustomerPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "instalments": [{"due_date": "2026-12-15", "amount": "3000.00"},
                        {"due_date": "2027-01-15", "amount": "3000.00"}],
        "notes": "agreed with the CFO"}]})

    instalments: Annotated[list[InstalmentIn], Field(min_length=1, max_length=36)]
    invoice_ids: Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None, Field(
        min_length=1, max_length=200,
        description="The open invoices the plan covers (default: all of them)")] = None
    notes: Annotated[str, Field(max_length=500)] = ""


def _plan_invoices(engine: Engine, customer_id: int, wanted: list[int] | None) -> list[int]:
    open_ids = _open_invoices(engine, customer_id)
    if wanted is None:
        return open_ids
    if len(set(wanted)) != len(wanted):
        raise ApiError(422, "an invoice is listed twice", "invalid_invoices")
    with Session(engine) as session:
        for invoice_id in wanted:
            invoice = session.get(Invoice, invoice_id)
            if invoice is None:
                raise ApiError(422, f"invoice {invoice_id} does not exist", "invalid_invoices")
            if invoice.customer_id != customer_id:
                raise ApiError(422, f"invoice {invoice_id} belongs to another customer",
                               "invalid_invoices")
            if invoice_id not in open_ids:
                raise ApiError(422, f"invoice {invoice_id} is {invoice.status}, not open",
                               "invalid_invoices")
    return wanted


@router.post("/{customer_id}/payment-plan", response_model=CustomerActionOut,
             responses=CUSTOMER_ACTION_ERRORS)
async def customer_payment_plan(customer_id: CustomerId, body: CustomerPlanIn,
                                user: ManagerUser, engine: EngineDep, client: TemporalClientDep,
                                settings: SettingsDep) -> CustomerActionOut:
    """One schedule for what the customer owes on its open invoices (or those in
    `invoice_ids`): the instalments must add up to their balances; the money is
    allotted oldest due invoice first, in instalment date order (an instalment
    may be shared by two invoices: `rules/payment_plan.py`), and each invoice
    agrees its own part through its workflow's `agree_payment_plan` update."""
    invoice_ids = await asyncio.to_thread(_plan_invoices, engine, customer_id, body.invoice_ids)
    try:
        schedule = [Instalment(i.due_date, to_cents(i.amount)) for i in body.instalments]
    except ValueError as err:
        raise ApiError(422, str(err)) from None
    plans = await asyncio.to_thread(customer_plan, engine, invoice_ids, schedule)
    result = await agree_customer_plan(client, plans, user.name,
                                       settings.temporal_rpc_timeout_seconds)
    report = await report_fan_out(engine, result, "agree_payment_plan", actor=user.name)
    await asyncio.to_thread(_audit_customer, engine, customer_id, "customer_payment_plan",
                            user.name, {
                                "notes": body.notes, "invoices": result.done,
                                "refused": {str(k): v for k, v in result.refused.items()},
                                "plans": {str(k): [{"due_date": i.due_date.isoformat(),
                                                    "amount_cents": i.amount_cents} for i in v]
                                          for k, v in plans.items()}})
    return CustomerActionOut(customer_id=customer_id, action="payment_plan", actor=user.name,
                             invoices=report)


class CustomerPaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "transfer_id": "VIR-2026-11-24-ACME", "amount": "4500.00", "currency": "EUR",
        "invoice_numbers": ["F-2026-0042", "F-2026-0044"]}]})

    transfer_id: Annotated[str, Field(min_length=1, max_length=128, description=(
        "The bank's reference of the transfer: recording it again records nothing more"))]
    amount: PositiveAmount
    currency: Currency
    invoice_numbers: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]],
                               Field(max_length=100)] = []


def _check_numbers(engine: Engine, customer_id: int, numbers: list[str]) -> Customer:
    with Session(engine) as session:
        customer = load_customer(session, customer_id)
        found = {i.number: i for i in session.exec(
            select(Invoice).where(col(Invoice.number).in_(numbers)))} if numbers else {}
    for number in numbers:
        if number not in found:
            raise ApiError(422, f"invoice {number} does not exist", "invalid_invoices")
        if found[number].customer_id != customer_id:
            raise ApiError(422, f"invoice {number} belongs to another customer",
                           "invalid_invoices")
    return customer


@router.post("/{customer_id}/payments", response_model=WebhookAck,
             responses=responses(401, 403, 404, 422))
async def record_customer_transfer(customer_id: CustomerId, body: CustomerPaymentIn,
                                   user: ManagerUser, engine: EngineDep,
                                   client: TemporalClientDep,
                                   settings: SettingsDep) -> WebhookAck:
    """A transfer seen on the bank statement, recorded by hand: split across the
    customer's open invoices as a payment webhook would be (the invoices named
    first, then an exact set, else oldest due first; the rest unapplied), and
    each invoice's workflow gets its part. Idempotent by `transfer_id`."""
    customer = await asyncio.to_thread(_check_numbers, engine, customer_id,
                                       body.invoice_numbers)
    try:
        cents = to_cents(body.amount)
    except ValueError as err:
        raise ApiError(422, str(err)) from None
    stored = await accept_payment(engine, client, IncomingPayment(
        source="manual", external_id=body.transfer_id, amount_cents=cents,
        currency=body.currency, customer_ref=customer.ref,
        references=tuple(body.invoice_numbers)),
        timedelta(seconds=settings.temporal_rpc_timeout_seconds))
    if stored.created:
        await asyncio.to_thread(_audit_customer, engine, customer_id, "customer_payment_recorded",
                                user.name, {"transfer_id": body.transfer_id,
                                            "amount_cents": cents, "currency": body.currency,
                                            "matched_by": stored.matched_by})
    return webhook_ack(stored)


