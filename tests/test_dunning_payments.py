"""Payments stop or steer the workflow at every stage (time-skipping server)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from ledger.models import CallTask, Invoice
from tests.factories import (
    add_invoices,
    advance_to_stage,
    audit_kinds,
    messages,
    new_worker,
    reach_stage,
    settings_for,
    start,
)
from workflows.dunning import DunningWorkflow, PaymentReceived

STAGES = ["scheduled", "pre_reminder", "reminder", "sms_reminder", "call", "last_reminder",
          "mise_en_demeure"]


@pytest.mark.parametrize("stage", STAGES)
async def test_full_payment_closes_at_every_stage(env, engine, database_url, executor, stage):
    settings = settings_for(database_url)
    today = (await env.get_current_time()).date()
    [invoice_id] = add_invoices(engine, due=today + timedelta(days=10), amounts=[120000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        await advance_to_stage(env, handle, stage)
        sent_before = [m.id for m in messages(engine, invoice_id) if m.status == "sent"]
        await handle.signal(DunningWorkflow.payment_received,
                            PaymentReceived(payment_id="pay-1", amount_cents=120000))
        result = await handle.result()
    assert (result.status, result.stage, result.balance_cents) == ("paid", "paid", 0)
    # Nothing is sent once the money is in (a message queued at that moment is withdrawn).
    rows = messages(engine, invoice_id)
    assert [m.id for m in rows if m.status == "sent"] == sent_before
    assert all(m.status in ("sent", "skipped") for m in rows)
    with Session(engine) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        assert (invoice.status, invoice.balance_cents) == ("paid", 0)
        assert invoice.closed_at is not None
        tasks = session.exec(select(CallTask).where(CallTask.invoice_id == invoice_id)).all()
        assert all(t.status == "cancelled" for t in tasks)
    assert audit_kinds(engine, invoice_id)[-2:] == ["payment_applied", "dunning_closed"]


async def test_partial_duplicate_and_over_payments(env, engine, database_url, executor):
    settings = settings_for(database_url)
    today = (await env.get_current_time()).date()
    [invoice_id] = add_invoices(engine, due=today + timedelta(days=2), amounts=[450000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        await reach_stage(handle, "pre_reminder")
        partial = PaymentReceived(payment_id="pay-1", amount_cents=150000)
        await handle.signal(DunningWorkflow.payment_received, partial)
        await handle.signal(DunningWorkflow.payment_received, partial)  # gateway retry
        status = await handle.query(DunningWorkflow.status)
        assert status.balance_cents == 300000
        await advance_to_stage(env, handle, "reminder")
        reminder = [m for m in messages(engine, invoice_id) if m.step_key == "reminder"][0]
        text = reminder.body.replace("\u202f", " ").replace("\xa0", " ")
        assert "3 000,00 EUR" in text and "1 500,00 EUR" in text  # due, and already received
        await handle.signal(DunningWorkflow.payment_received,
                            PaymentReceived(payment_id="pay-2", amount_cents=310000))
        result = await handle.result()
    assert (result.status, result.balance_cents, result.unapplied_cents) == ("paid", 0, 10000)
    assert audit_kinds(engine, invoice_id).count("payment_applied") == 2


async def test_wrong_currency_payment_is_not_applied(env, engine, database_url, executor):
    settings = settings_for(database_url)
    today = (await env.get_current_time()).date()
    [invoice_id] = add_invoices(engine, due=today + timedelta(days=20), amounts=[10000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        await reach_stage(handle, "scheduled")
        await handle.signal(DunningWorkflow.payment_received,
                            PaymentReceived(payment_id="usd", amount_cents=10000, currency="USD"))
        status = await handle.query(DunningWorkflow.status)
        assert (status.status, status.balance_cents) == ("open", 10000)
        await handle.signal(DunningWorkflow.payment_received,
                            PaymentReceived(payment_id="eur", amount_cents=10000))
        assert (await handle.result()).status == "paid"
    assert "payment_rejected" in audit_kinds(engine, invoice_id)
