"""A customer's payment plan in ledger terms: the schedule split over open invoices
(`rules.payment_plan`), each invoice's part agreed through its own workflow."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from activities.payloads import Instalment
from api.errors import ApiError
from ledger.models import Invoice
from rules.allocation import OpenInvoice
from rules.payment_plan import PlannedInstalment, split_plan


def customer_plan(engine: Engine, invoice_ids: list[int],
                  instalments: list[Instalment]) -> dict[int, list[Instalment]]:
    """Each invoice's instalments, from the ledger's balances; 422 when the schedule
    does not fit (empty, not adding up to what the invoices owe)."""
    with Session(engine) as session:
        invoices = session.exec(select(Invoice).where(col(Invoice.id).in_(invoice_ids))).all()
    if len({i.currency for i in invoices}) > 1:
        raise ApiError(422, "the invoices are in several currencies: plan each currency "
                            "separately (invoice_ids)", "invalid_plan")
    try:
        plans = split_plan([PlannedInstalment(i.due_date, i.amount_cents) for i in instalments],
                           [OpenInvoice(i.id or 0, i.number, i.due_date, i.balance_cents)
                            for i in invoices])
    except ValueError as err:
        raise ApiError(422, str(err), "invalid_plan") from None
    return {invoice_id: [Instalment(p.due_date, p.amount_cents) for p in parts]
            for invoice_id, parts in plans.items()}
