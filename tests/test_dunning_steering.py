"""Agents and managers steer a running workflow through validated updates."""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError

from activities.payloads import Instalment
from ledger.models import AuditEvent, CallTask, OutboxMessage, PaymentPlan
from ledger.models import Instalment as InstalmentRow
from tests.factories import (
    add_invoices,
    advance_to_stage,
    audit_kinds,
    eventually,
    messages,
    new_worker,
    settings_for,
    start,
)
from workflows.dunning import (
    CallOutcome,
    CompleteCallTask,
    DunningWorkflow,
    PaymentPlanAgreed,
    StewardAction,
)


async def rejected(call, match: str) -> None:  # type: ignore[no-untyped-def]
    """The update was refused by its validator (or handler) with a reason matching `match`."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    assert re.search(match, str(info.value.cause)), info.value.cause


async def _at_call_stage(env, engine, database_url, executor, worker, amount=90000):  # type: ignore[no-untyped-def]
    settings = settings_for(database_url)
    today = (await env.get_current_time()).date()
    [invoice_id] = add_invoices(engine, due=today + timedelta(days=1), amounts=[amount])
    [handle] = await start(env.client, engine, settings, worker, [invoice_id])
    status = await advance_to_stage(env, handle, "call")
    [task_id] = status.open_tasks
    return invoice_id, handle, task_id


async def test_promise_to_pay_waits_then_resumes(env, engine, database_url, executor):
    settings = settings_for(database_url)
    async with new_worker(env.client, engine, settings, executor) as worker:
        invoice_id, handle, task_id = await _at_call_stage(env, engine, database_url,
                                                           executor, worker)
        promised = (await env.get_current_time()).date() + timedelta(days=15)
        done = await handle.execute_update(
            DunningWorkflow.complete_call_task,
            CompleteCallTask(task_id=task_id, outcome=CallOutcome.PROMISE_TO_PAY,
                             promise_date=promised, notes="pays on the 15th", agent="alice"))
        assert done.stage == "promise_to_pay"
        status = await handle.query(DunningWorkflow.status)
        assert status.next_action == "promise_to_pay_due"
        # The last reminder (D+21) would have gone during the promise: it waits.
        await env.sleep(timedelta(days=10))
        assert not [m for m in messages(engine, invoice_id) if m.step_key == "last_reminder"]
        await advance_to_stage(env, handle, "last_reminder")
        # Activities stamp rows with the wall clock; the workflow's time is the server's.
        assert (await env.get_current_time()).date() >= promised + timedelta(days=3)
        await handle.execute_update(DunningWorkflow.cancel,
                                    StewardAction(actor="boss", reason="write_off"))
        assert (await handle.result()).status == "cancelled"
    kinds = audit_kinds(engine, invoice_id)
    assert "call_task_completed" in kinds and "promise_broken" in kinds
    with Session(engine) as session:
        task = session.get(CallTask, task_id)
        assert task is not None
        assert (task.status, task.outcome, task.completed_by) == ("completed", "promise_to_pay",
                                                                  "alice")
        assert task.promise_date == promised


async def test_dispute_pauses_until_resolved(env, engine, database_url, executor):
    settings = settings_for(database_url)
    async with new_worker(env.client, engine, settings, executor) as worker:
        invoice_id, handle, task_id = await _at_call_stage(env, engine, database_url,
                                                           executor, worker)
        await rejected(handle.execute_update(
                DunningWorkflow.complete_call_task,
                CompleteCallTask(task_id=task_id, outcome=CallOutcome.DISPUTE)),
                           "dispute_reason")
        await handle.execute_update(
            DunningWorkflow.complete_call_task,
            CompleteCallTask(task_id=task_id, outcome=CallOutcome.DISPUTE,
                             dispute_reason="goods damaged"))
        before = len(messages(engine, invoice_id))
        await env.sleep(timedelta(days=40))
        assert len(messages(engine, invoice_id)) == before
        status = await handle.query(DunningWorkflow.status)
        assert (status.stage, status.disputed, status.next_action) == ("disputed", True, "dispute")
        await handle.execute_update(DunningWorkflow.resolve_dispute,
                                    StewardAction(actor="manager", reason="credit agreed"))
        # Resumes with the next step on the same (business) day, not 33 days later.
        status = await handle.query(DunningWorkflow.status)
        assert status.next_action == "last_reminder"
        assert status.next_action_at - await env.get_current_time() < timedelta(days=4)
        await advance_to_stage(env, handle, "last_reminder", max_days=4)
        await handle.execute_update(DunningWorkflow.cancel,
                                    StewardAction(actor="manager", reason="credit_note"))
        assert (await handle.result()).status == "cancelled"
    kinds = audit_kinds(engine, invoice_id)
    assert kinds.index("dispute_opened") < kinds.index("dispute_resolved")


async def test_pause_resume_and_validators(env, engine, database_url, executor):
    settings = settings_for(database_url)
    async with new_worker(env.client, engine, settings, executor) as worker:
        invoice_id, handle, task_id = await _at_call_stage(env, engine, database_url,
                                                           executor, worker)
        await rejected(handle.execute_update(DunningWorkflow.resume, StewardAction(actor="m")),
                           "not paused")
        await handle.execute_update(DunningWorkflow.pause,
                                    StewardAction(actor="m", reason="customer on holiday"))
        await rejected(handle.execute_update(DunningWorkflow.pause, StewardAction(actor="m")),
                           "already paused")
        before = len(messages(engine, invoice_id))
        await env.sleep(timedelta(days=30))
        assert len(messages(engine, invoice_id)) == before
        await handle.execute_update(DunningWorkflow.resume, StewardAction(actor="m"))
        await advance_to_stage(env, handle, "last_reminder", max_days=4)
        await rejected(handle.execute_update(DunningWorkflow.complete_call_task,
                                        CompleteCallTask(task_id=999999)),
                           "not a task of this invoice")
        await handle.execute_update(DunningWorkflow.complete_call_task,
                                    CompleteCallTask(task_id=task_id,
                                                     outcome=CallOutcome.NO_ANSWER))
        await rejected(handle.execute_update(DunningWorkflow.complete_call_task,
                                        CompleteCallTask(task_id=task_id,
                                                         outcome=CallOutcome.NO_ANSWER)),
                           "already completed")
        await rejected(handle.execute_update(DunningWorkflow.cancel, StewardAction(reason="bored")),
                           "credit_note or write_off")
        await handle.execute_update(DunningWorkflow.cancel,
                                    StewardAction(actor="m", reason="write_off"))
        assert (await handle.result()).status == "cancelled"
        with pytest.raises(Exception):  # noqa: B017  (a closed workflow takes no update)
            await handle.execute_update(DunningWorkflow.pause, StewardAction(actor="m"))
    kinds = audit_kinds(engine, invoice_id)
    assert {"paused", "resumed", "cancelled"} <= set(kinds)


async def test_call_outcome_does_not_wait_for_a_gathering_message(env, engine, database_url,
                                                                  executor):
    """A step's grouped message gathers for ten minutes; an agent completing the
    call meanwhile is answered at once (the update must not wait in real time)."""
    settings = settings_for(database_url)
    async with new_worker(env.client, engine, settings, executor) as worker:
        invoice_id, handle, task_id = await _at_call_stage(env, engine, database_url,
                                                           executor, worker)
        status = await handle.query(DunningWorkflow.status)
        assert status.next_action == "last_reminder" and status.next_action_at
        await env.sleep(status.next_action_at - await env.get_current_time()
                        + timedelta(seconds=30))

        async def gathering() -> None:
            queued = [m for m in messages(engine, invoice_id) if m.step_key == "last_reminder"]
            assert queued and queued[0].status == "pending", queued

        await eventually(gathering)
        done = await asyncio.wait_for(handle.execute_update(
            DunningWorkflow.complete_call_task,
            CompleteCallTask(task_id=task_id, outcome=CallOutcome.NO_ANSWER)), timeout=20)
        assert done.task_id == task_id
        await handle.execute_update(DunningWorkflow.cancel,
                                    StewardAction(actor="m", reason="write_off"))
        assert (await handle.result()).status == "cancelled"


async def test_payment_plan_from_call_stores_instalments(env, engine, database_url, executor):
    settings = settings_for(database_url)
    async with new_worker(env.client, engine, settings, executor) as worker:
        invoice_id, handle, task_id = await _at_call_stage(env, engine, database_url,
                                                           executor, worker, amount=90000)
        today = (await env.get_current_time()).date()
        plan = [Instalment(today + timedelta(days=30 * k), 30000) for k in (1, 2, 3)]
        await rejected(handle.execute_update(DunningWorkflow.agree_payment_plan,
                                        PaymentPlanAgreed(instalments=plan[:2])),
                           "instalments total")
        done = await handle.execute_update(
            DunningWorkflow.complete_call_task,
            CompleteCallTask(task_id=task_id, outcome=CallOutcome.PAYMENT_PLAN,
                             instalments=plan, agent="bob"))
        assert done.stage == "in_payment_plan"
        result = await handle.result()
    assert result.status == "in_payment_plan"
    with Session(engine) as session:
        [row] = session.exec(select(PaymentPlan).where(PaymentPlan.invoice_id == invoice_id))
        amounts = [i.amount_cents for i in session.exec(
            select(InstalmentRow).where(InstalmentRow.plan_id == row.id))]
        assert amounts == [30000, 30000, 30000]
        assert not session.exec(select(OutboxMessage).where(
            OutboxMessage.invoice_id == invoice_id,
            OutboxMessage.step_key == "last_reminder")).all()


async def test_already_overdue_invoice_skips_the_pre_reminder(env, engine, database_url,
                                                             executor):
    settings = settings_for(database_url)
    now = await env.get_current_time()
    [invoice_id] = add_invoices(engine, due=now.date() - timedelta(days=20), amounts=[5000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        await advance_to_stage(env, handle, "sms_reminder")
        sent = messages(engine, invoice_id)
        assert [m.step_key for m in sent] == ["reminder", "sms_reminder"]
        with Session(engine) as session:
            started = session.exec(select(AuditEvent).where(
                AuditEvent.invoice_id == invoice_id,
                AuditEvent.kind == "dunning_started")).one()
        plan = {key: date.fromisoformat(day) for key, day in started.detail["plan"]}
        assert plan["reminder"] == now.date()  # the first overdue step, today
        assert (plan["sms_reminder"] - plan["reminder"]).days == 6  # the policy's spacing
        assert "pre_reminder" not in plan
        await handle.execute_update(DunningWorkflow.cancel,
                                    StewardAction(actor="m", reason="credit_note"))
        await handle.result()
