"""Sending is effectively exactly once, and a permanent failure moves to the next channel."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notify import Creditor, NotifyActivities
from activities.payloads import SendMessageInput
from activities.providers.base import (
    OutgoingMessage,
    PermanentSendError,
    ProviderReceipt,
    TransientSendError,
)
from activities.rendering import MessageRenderer
from ledger.models import AuditEvent, CallTaskInvoice, Customer, Invoice, OutboxMessage
from tests.factories import add_invoices, messages, new_worker, settings_for, start


class RecordingProvider:
    """Accepts messages like a provider would, failing as scripted first."""

    def __init__(self, name: str = "recording", fail_first: type[Exception] | None = None,
                 permanent_for: str | None = None) -> None:
        self.name = name
        self.fail_first = fail_first
        self.permanent_for = permanent_for
        self.accepted: list[OutgoingMessage] = []
        self.calls: Counter[int] = Counter()
        self.lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> ProviderReceipt:
        with self.lock:
            self.calls[message.outbox_id] += 1
            first = self.calls[message.outbox_id] == 1
        if self.permanent_for and message.recipient == self.permanent_for:
            raise PermanentSendError(f"{message.recipient} bounced")
        if first and self.fail_first is TransientSendError:
            raise TransientSendError("429 too many requests", retry_after_seconds=0.1)
        if first and self.fail_first is not None:
            raise self.fail_first("worker crashed before the provider answered")
        with self.lock:
            self.accepted.append(message)
        return ProviderReceipt(provider_id=f"{self.name}-{message.outbox_id}")


def _notify(engine, provider) -> NotifyActivities:  # type: ignore[no-untyped-def]
    return NotifyActivities(engine, {"email": provider, "sms": provider, "letter": provider},
                            MessageRenderer(), Creditor(name="Relance Test SAS"))


def test_a_retried_send_never_sends_twice(engine) -> None:
    [invoice_id] = add_invoices(engine, due=__import__("datetime").date(2026, 1, 10),
                                amounts=[10000])
    provider = RecordingProvider(fail_first=TransientSendError)
    notify = _notify(engine, provider)
    msg = SendMessageInput(invoice_id=invoice_id, step_key="reminder", channel="email",
                           template="reminder", balance_cents=10000)
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as info:
        env.run(notify.send_message, msg)
    assert info.value.type == "TransientSendError" and not info.value.non_retryable
    assert info.value.next_retry_delay == timedelta(seconds=0.1)  # Retry-After honoured
    first = env.run(notify.send_message, msg)
    again = env.run(notify.send_message, msg)  # e.g. the worker died before reporting
    assert first.status == again.status == "sent"
    assert first.provider_id == again.provider_id
    assert len(provider.accepted) == 1
    [row] = messages(engine, invoice_id)
    assert (row.status, row.attempts) == ("sent", 2)
    with Session(engine) as session:
        sent_events = session.exec(select(AuditEvent).where(
            AuditEvent.invoice_id == invoice_id, AuditEvent.kind == "message_sent")).all()
    assert len(sent_events) == 1
    assert sent_events[0].detail["provider_id"] == first.provider_id
    assert sent_events[0].detail["recipient"] == "ap@client.example"


async def test_crash_and_retry_in_a_full_cycle_sends_each_step_once(env, engine, database_url,
                                                                    executor):
    settings = settings_for(database_url)
    provider = RecordingProvider(fail_first=RuntimeError)
    today = (await env.get_current_time()).date()
    [invoice_id] = add_invoices(engine, due=today + timedelta(days=10), amounts=[20000])
    providers = {"email": provider, "sms": provider, "letter": provider}
    async with new_worker(env.client, engine, settings, executor, providers) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        result = await handle.result()
    assert result.status == "escalated"
    rows = messages(engine, invoice_id)
    assert len(rows) == 6 and all(r.status == "sent" for r in rows)
    # Every message (one batch each: the invoice is alone) failed once (a crash) and
    # was accepted exactly once after the retry.
    batches = {r.batch_id for r in rows}
    assert len(batches) == 6 and all(provider.calls[b or 0] == 2 for b in batches)
    assert Counter(m.outbox_id for m in provider.accepted) == {b: 1 for b in batches}


async def test_bounced_email_falls_back_to_call_tasks(env, engine, database_url, executor):
    settings = settings_for(database_url)
    provider = RecordingProvider(permanent_for="bounce@client.example")
    today = (await env.get_current_time()).date()
    [invoice_id] = add_invoices(engine, due=today + timedelta(days=10), amounts=[20000],
                                email="bounce@client.example")
    providers = {"email": provider, "sms": provider, "letter": provider}
    async with new_worker(env.client, engine, settings, executor, providers) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        result = await handle.result()
    assert result.status == "escalated"
    rows = {(r.step_key, r.channel): r.status for r in messages(engine, invoice_id)}
    # Only the first email is tried; later email steps become call tasks.
    assert rows[("pre_reminder", "email")] == "failed"
    assert ("reminder", "email") not in rows and ("last_reminder", "email") not in rows
    assert rows[("sms_reminder", "sms")] == "sent"
    assert rows[("mise_en_demeure", "letter")] == "sent"
    with Session(engine) as session:
        tasks = session.exec(select(CallTaskInvoice).where(
            CallTaskInvoice.invoice_id == invoice_id)).all()
        invoice = session.get(Invoice, invoice_id)
        customer = session.get(Customer, invoice.customer_id if invoice else 0)
    assert sorted(t.step_key for t in tasks) == ["call", "last_reminder", "mise_en_demeure",
                                                 "pre_reminder", "reminder"]
    assert customer is not None and customer.email_invalid


async def test_do_not_contact_and_missing_phone(env, engine, database_url, executor):
    settings = settings_for(database_url)
    today = (await env.get_current_time()).date()
    [invoice_id] = add_invoices(engine, due=today - timedelta(days=8), amounts=[20000],
                                phone=None)
    [quiet_id] = add_invoices(engine, due=today - timedelta(days=8), amounts=[20000])
    with Session(engine) as session:
        quiet = session.get(Invoice, quiet_id)
        customer = session.get(Customer, quiet.customer_id if quiet else 0)
        assert customer is not None
        customer.do_not_contact = True
        session.add(customer)
        session.commit()
    async with new_worker(env.client, engine, settings, executor) as worker:
        handles = await start(env.client, engine, settings, worker, [invoice_id, quiet_id])
        results = [await h.result() for h in handles]
    assert [r.status for r in results] == ["escalated", "escalated"]
    assert {r.status for r in messages(engine, quiet_id)} == {"skipped"}
    rows = {(r.step_key, r.channel): r.status for r in messages(engine, invoice_id)}
    # No phone: the SMS step is recorded as failed and goes out by email instead.
    assert rows[("sms_reminder", "sms")] == "failed"
    assert rows[("sms_reminder", "email")] == "sent"
    with Session(engine) as session:
        statuses = {r.status for r in session.exec(select(OutboxMessage).where(
            OutboxMessage.invoice_id == invoice_id))}
    assert statuses == {"sent", "failed"}
