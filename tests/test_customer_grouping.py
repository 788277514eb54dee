"""One conversation per customer (time-skipping server)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from dunning_client.customer import complete_customer_call, deliver_payments, steer_customer
from ledger.crud import record_customer_payment
from ledger.models import AuditEvent, CallTask, CallTaskInvoice, Invoice, MessageBatch
from tests.factories import (
    add_invoices,
    advance_to_stage,
    messages,
    new_worker,
    settings_for,
    start,
)
from tests.test_sending import RecordingProvider
from workflows.dunning import CallOutcome, CompleteCallTask, DunningWorkflow, StewardAction


def _plain(text: str) -> str:
    return text.replace("\u202f", " ").replace("\xa0", " ")


async def test_three_invoices_same_day_one_message_two_customers_never_share(
        env, engine, database_url, executor):
    settings = settings_for(database_url)
    provider = RecordingProvider(fail_first=RuntimeError)  # and a crash on every first send
    providers = {"email": provider, "sms": provider, "letter": provider}
    today = (await env.get_current_time()).date()
    due = today + timedelta(days=10)
    three = add_invoices(engine, due=due, amounts=[10000, 20000, 30050])
    other = add_invoices(engine, due=due, amounts=[5000])
    async with new_worker(env.client, engine, settings, executor, providers) as worker:
        handles = await start(env.client, engine, settings, worker, three + other)
        for h in handles:
            await advance_to_stage(env, h, "reminder")
        await env.sleep(timedelta(hours=1))  # past the gathering delay
        # Cancel them all before awaiting any result: awaiting one skips time, and the
        # others would reach their next step (and send it) meanwhile.
        for h in handles:
            await h.execute_update(DunningWorkflow.cancel, StewardAction("t", "write_off"))
        for h in handles:
            await h.result()
    with Session(engine) as session:
        batches = session.exec(select(MessageBatch).where(
            MessageBatch.customer_id.in_(  # type: ignore[attr-defined]
                select(Invoice.customer_id).where(Invoice.id.in_(three + other))))  # type: ignore[union-attr]
            .order_by(MessageBatch.id)  # type: ignore[arg-type]
        ).all()
    by_customer: dict[int, list[MessageBatch]] = {}
    for b in batches:
        by_customer.setdefault(b.customer_id, []).append(b)
    assert len(by_customer) == 2
    grouped = [b for b in batches if len(b.invoice_ids) == 3]
    # pre-reminder and reminder: one message each for the three invoices
    assert [(b.channel, b.template) for b in grouped] == [("email", "grouped")] * 2
    reminder = grouped[1]
    body = _plain(reminder.body)
    for number_amount in ("100,00 EUR", "200,00 EUR", "300,50 EUR", "600,50 EUR"):
        assert number_amount in body
    assert all(b.invoice_ids in (sorted(three), other) for b in batches)  # never shared
    # Exactly once despite a crash before each provider answer.
    assert sorted(m.outbox_id for m in provider.accepted) == sorted(b.id for b in batches)
    # Each invoice's trail names the same provider id.
    with Session(engine) as session:
        sent = session.exec(select(AuditEvent).where(
            AuditEvent.invoice_id.in_(three),  # type: ignore[union-attr]
            AuditEvent.kind == "message_sent")).all()
    ids = {e.detail["provider_id"] for e in sent if e.detail["step"] == "reminder"}
    assert ids == {reminder.provider_id}
    numbers = [m.step_key for i in three for m in messages(engine, i)]
    assert numbers.count("reminder") == 3


async def test_customer_payment_split_and_one_call_for_all(env, engine, database_url, executor):
    settings = settings_for(database_url)
    today = (await env.get_current_time()).date()
    ids = add_invoices(engine, due=today + timedelta(days=1), amounts=[10000, 20000, 30000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        handles = await start(env.client, engine, settings, worker, ids)
        statuses = [await advance_to_stage(env, h, "call") for h in handles]
        task_ids = {s.open_tasks[0] for s in statuses}
        assert len(task_ids) == 1  # one call task for the customer
        [task_id] = task_ids
        with Session(engine) as session:
            links = session.exec(select(CallTaskInvoice).where(
                CallTaskInvoice.task_id == task_id)).all()
            assert sorted(link.invoice_id for link in links) == sorted(ids)
            customer_id = session.get(Invoice, ids[0]).customer_id  # type: ignore[union-attr]
        promise = today + timedelta(days=40)
        done = await complete_customer_call(
            env.client, engine, task_id,
            CompleteCallTask(outcome=CallOutcome.PROMISE_TO_PAY, promise_date=promise,
                             agent="alice"),
            per_invoice={ids[2]: CompleteCallTask(outcome=CallOutcome.DISPUTE,
                                                  dispute_reason="not delivered")})
        assert sorted(done.done) == sorted(ids) and not done.refused
        stages = [(await h.query(DunningWorkflow.status)).stage for h in handles]
        assert stages == ["promise_to_pay", "promise_to_pay", "disputed"]
        with Session(engine) as session:
            task = session.get(CallTask, task_id)
            assert task is not None and (task.status, task.outcome) == ("completed", "mixed")
            # one transfer of 250 EUR: exact set? no -> oldest first: 100 + 150 of 200
            payments = record_customer_payment(session=session, source="bank",
                                               external_id="VIR-1", customer_id=customer_id,
                                               amount_cents=25000, currency="EUR")
        await deliver_payments(env.client, payments)
        results = [await handles[0].result()]
        status_2 = await handles[1].query(DunningWorkflow.status)
        assert results[0].status == "paid" and status_2.balance_cents == 5000
        assert (await handles[2].query(DunningWorkflow.status)).balance_cents == 30000
        refused = await steer_customer(env.client, engine, customer_id, "cancel",
                                       StewardAction("manager", "write_off"))
        assert sorted(refused.done) == sorted(ids[1:])
        assert [(await h.result()).status for h in handles[1:]] == ["cancelled", "cancelled"]
