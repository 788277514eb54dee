"""One durable workflow per open invoice, `invoice-<id>`: it follows the customer's
dunning policy until the invoice is paid, put in a payment plan, cancelled or
escalated.

The loop is "wait until the next step is due or a message changes the plan",
recomputed from `workflow.now()` after every wake-up. Message handlers change the
state; the loop mirrors it into the ledger through activities.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.notify import NotifyActivities
    from activities.payloads import (
        AuditInput,
        CallTaskOutcomeInput,
        CreateCallTaskInput,
        DispatchMessageInput,
        InvoiceProgress,
        MarkRecipientInput,
        SendMessageInput,
        SendMessageResult,
        StorePaymentPlanInput,
        WithdrawMessageInput,
    )
    from rules.calendar import StepClock
    from rules.policy import Channel
    from rules.schedule import plan_steps
    from workflows.dunning_payloads import (
        Acknowledged,
        CallOutcome,
        CallTaskCompleted,
        CompleteCallTask,
        DunningInput,
        DunningResult,
        DunningState,
        DunningStatus,
        InvoiceStatus,
        PaymentPlanAgreed,
        PaymentReceived,
        PlannedStepState,
        StewardAction,
    )

STAGE = SearchAttributeKey.for_keyword("RelanceStage")
CUSTOMER = SearchAttributeKey.for_keyword("RelanceCustomer")
AMOUNT_DUE = SearchAttributeKey.for_float("RelanceAmountDue")
NEXT_ACTION_AT = SearchAttributeKey.for_datetime("RelanceNextActionAt")

LEDGER_TIMEOUT = timedelta(seconds=30)
SEND_TIMEOUT = timedelta(minutes=2)
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
    non_retryable_error_types=["PermanentSendError"],
)


@workflow.defn
class DunningWorkflow:
    @workflow.init
    def __init__(self, input: DunningInput) -> None:
        self.input = input
        self.state = input.state or DunningState(balance_cents=input.balance_cents)
        # Handlers that run activities take this so they never interleave.
        self.lock = asyncio.Lock()
        # Set by any handler that changes the plan, so the loop wakes and recomputes.
        self.changed = False
        self.pending_audit: list[AuditInput] = []

    # --- the loop -----------------------------------------------------------

    @workflow.run
    async def run(self, input: DunningInput) -> DunningResult:
        s = self.state
        if input.state is None:
            now = workflow.now()
            s.clock = StepClock(
                started_at=now,
                today=StepClock(timezone=input.timezone).day_of(now),
                day_seconds=input.day_seconds,
                timezone=input.timezone,
                send_hour=input.send_hour,
                holidays=tuple(input.holidays),
            )
            s.plan = [
                PlannedStepState(p.step.key, p.day)
                for p in plan_steps(input.policy, input.due_date, s.clock.today)
            ]
            self._audit("dunning_started", {"policy": input.policy.code,
                                            "plan": [[p.key, p.day.isoformat()] for p in s.plan]})
        await self._sync()

        while s.status == InvoiceStatus.OPEN:
            if workflow.info().is_continue_as_new_suggested() and not self.pending_audit:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(replace(input, state=s))
            self.changed = False
            if s.paused or s.disputed:
                await workflow.wait_condition(lambda: self.changed)
                await self._sync()
                continue
            if s.promise_until is not None:
                waited = await self._wait_until(s.clock.at(s.promise_until))
                if waited and s.promise_until is not None:
                    self._audit("promise_broken", {"promise_until": s.promise_until.isoformat()})
                    s.promise_until = None
                    self.state.resume_plan(self.state.clock.day_of(workflow.now()))
                await self._sync()
                continue
            if s.next_step >= len(s.plan):
                # A plan with nothing left (e.g. a policy without overdue steps).
                await self._close(InvoiceStatus.ESCALATED, "escalated")
                break
            if await self._wait_until(s.next_step_at()):
                async with self.lock:
                    if s.status == InvoiceStatus.OPEN and not self.changed:
                        await self._execute(s.current_step_key())
            await self._sync()

        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._sync()
        return DunningResult(s.status, s.stage, s.balance_cents, s.unapplied_cents, s.steps_done)

    async def _wait_until(self, when: datetime) -> bool:
        """True when `when` arrived; False when a message woke the loop first."""
        delay = when - workflow.now()
        if delay <= timedelta(0):
            return not self.changed
        try:
            await workflow.wait_condition(lambda: self.changed, timeout=delay)
            return False
        except TimeoutError:
            return True

    # --- steps ----------------------------------------------------------------

    async def _execute(self, key: str) -> None:
        s = self.state
        step = self.input.policy.step(key)
        s.stage = key
        if step.channel == Channel.ESCALATION:
            s.next_step += 1
            s.steps_done.append(key)
            await self._close(InvoiceStatus.ESCALATED, "escalated")
            return
        if step.channel == Channel.CALL:
            await self._create_call_task(key, "policy step")
        elif step.channel == Channel.LETTER:
            # The formal notice goes by registered post and by email.
            await self._send(key, Channel.LETTER, step.template)
            await self._send(key, Channel.EMAIL, step.template)
        else:
            await self._send(key, step.channel, step.template)
        s.next_step += 1
        s.steps_done.append(key)

    async def _send(self, key: str, channel: Channel, template: str) -> None:
        s = self.state
        if channel == Channel.EMAIL and s.email_unusable:
            await self._create_call_task(key, "email address unusable")
            return
        if channel == Channel.SMS and s.sms_unusable:
            channel = Channel.EMAIL
            if s.email_unusable:
                await self._create_call_task(key, "no usable email or phone")
                return
        msg = SendMessageInput(
            invoice_id=self.input.invoice_id,
            step_key=key,
            channel=channel,
            template=template,
            balance_cents=s.balance_cents,
            deadline_days=self.input.policy.formal_notice_deadline_days,
            recovery_indemnity=self.input.policy.recovery_indemnity,
        )
        if workflow.patched("customer-grouping"):
            result = await self._send_grouped(msg, key)
        else:
            # Histories recorded before grouping sent each message alone.
            result = await workflow.execute_activity_method(
                NotifyActivities.send_message, msg,
                start_to_close_timeout=SEND_TIMEOUT, retry_policy=SEND_RETRY,
            )
        if result.recipient_unusable:
            # Permanent failure: record it and move on to the next channel.
            if channel == Channel.EMAIL:
                s.email_unusable = True
            elif channel == Channel.SMS:
                s.sms_unusable = True
            if channel != Channel.LETTER:
                await self._send(key, channel, template)

    async def _send_grouped(self, msg: SendMessageInput, key: str) -> SendMessageResult:
        """Queue the message in today's window, give the customer's other invoices
        the gathering delay to join it, then send the window's one message."""
        s = self.state
        if s.status != InvoiceStatus.OPEN:
            # Paid or closed during this step (e.g. between a letter and its email).
            return SendMessageResult(status="skipped", reason=f"invoice {s.status}")
        msg.window = s.clock.day_of(workflow.now()).isoformat()
        msg.tone = self.input.policy.step(key).tone
        queued = await workflow.execute_activity_method(
            NotifyActivities.enqueue_message, msg,
            start_to_close_timeout=LEDGER_TIMEOUT, retry_policy=SEND_RETRY,
        )
        if queued.status != "queued":
            return queued
        if self.input.gather_seconds > 0:
            await self._gather()
        if s.status != InvoiceStatus.OPEN:
            withdrawn = await workflow.execute_activity_method(
                NotifyActivities.withdraw_message,
                WithdrawMessageInput(queued.outbox_id, f"invoice {s.status}"),
                start_to_close_timeout=LEDGER_TIMEOUT,
            )
            if withdrawn.status == "skipped":
                return withdrawn
        return await workflow.execute_activity_method(
            NotifyActivities.dispatch_message, DispatchMessageInput(queued.outbox_id),
            start_to_close_timeout=SEND_TIMEOUT, retry_policy=SEND_RETRY,
        )

    async def _gather(self) -> None:
        """Wait for the customer's other invoices to join the window. The step runs
        under the lock; an agent's call outcome must not wait the whole window for
        it (an API call would time out), so the lock is free while gathering."""
        s = self.state
        unlocked = workflow.patched("call-outcome-while-gathering")
        if unlocked:
            self.lock.release()
        try:
            await workflow.wait_condition(lambda: s.status != InvoiceStatus.OPEN,
                                          timeout=timedelta(seconds=self.input.gather_seconds))
        except TimeoutError:
            pass
        finally:
            if unlocked:
                await self.lock.acquire()

    async def _create_call_task(self, key: str, reason: str) -> None:
        task_id = await workflow.execute_activity_method(
            LedgerActivities.create_call_task,
            CreateCallTaskInput(self.input.invoice_id, key, reason),
            start_to_close_timeout=LEDGER_TIMEOUT,
        )
        self.state.open_tasks[task_id] = key

    async def _close(self, status: InvoiceStatus, stage: str) -> None:
        s = self.state
        s.status = status
        s.stage = stage
        self._audit("dunning_closed", {"status": status, "balance_cents": s.balance_cents})
        s.open_tasks.clear()

    # --- ledger mirror --------------------------------------------------------

    def _audit(self, kind: str, detail: dict, actor: str = "workflow") -> None:
        self.state.audit_seq += 1
        key = f"{workflow.info().workflow_id}:{self.state.audit_seq}"
        self.pending_audit.append(AuditInput(self.input.invoice_id, kind, detail, actor, key))

    async def _sync(self) -> None:
        """Write pending audit events and the invoice's progress, upsert search attributes."""
        s = self.state
        next_action, next_at = s.next_action()
        events, self.pending_audit = self.pending_audit, []
        await workflow.execute_activity_method(
            LedgerActivities.record_progress,
            InvoiceProgress(
                invoice_id=self.input.invoice_id,
                status=s.status,
                stage=s.stage,
                balance_cents=s.balance_cents,
                next_action=next_action,
                next_action_at=next_at,
                closed=s.status != InvoiceStatus.OPEN,
                events=events,
            ),
            start_to_close_timeout=LEDGER_TIMEOUT,
        )
        workflow.upsert_search_attributes(
            [
                STAGE.value_set(s.stage),
                CUSTOMER.value_set(self.input.customer_ref),
                AMOUNT_DUE.value_set(s.balance_cents / 100),
                NEXT_ACTION_AT.value_set(next_at) if next_at else NEXT_ACTION_AT.value_unset(),
            ]
        )

    # --- signals ----------------------------------------------------------------

    @workflow.signal
    def payment_received(self, payment: PaymentReceived) -> None:
        events = self.state.apply_payment(payment, self.input.currency)
        if events is None:
            return
        for kind, detail in events:
            self._audit(kind, detail)
        self.changed = True

    # --- updates ----------------------------------------------------------------

    @workflow.update
    async def complete_call_task(self, cmd: CompleteCallTask) -> CallTaskCompleted:
        s = self.state
        async with self.lock:
            if cmd.task_id not in s.open_tasks:
                # The state may have moved while we waited for the lock.
                raise ApplicationError(f"call task {cmd.task_id} is no longer open",
                                       type="StaleCallTask", non_retryable=True)
            await workflow.execute_activity_method(
                LedgerActivities.complete_call_task,
                CallTaskOutcomeInput(self.input.invoice_id, cmd.task_id, cmd.outcome,
                                     cmd.notes, cmd.promise_date, cmd.agent),
                start_to_close_timeout=LEDGER_TIMEOUT,
            )
            del s.open_tasks[cmd.task_id]
            s.completed_tasks.append(cmd.task_id)
            actor = cmd.agent or "agent"
            match cmd.outcome:
                case CallOutcome.PROMISE_TO_PAY:
                    promised = cmd.promise_date or s.clock.day_of(workflow.now())
                    s.promise_until = promised + timedelta(
                        days=self.input.policy.promise_grace_days)
                    s.stage = "promise_to_pay"
                case CallOutcome.PAID_CLAIMED:
                    # Give the claimed payment the grace period to arrive.
                    s.promise_until = s.clock.day_of(workflow.now()) + timedelta(
                        days=self.input.policy.promise_grace_days)
                    s.stage = "paid_claimed"
                case CallOutcome.DISPUTE:
                    s.disputed = True
                    s.stage = "disputed"
                    self._audit("dispute_opened", {"reason": cmd.dispute_reason}, actor)
                case CallOutcome.PAYMENT_PLAN:
                    await self._agree_plan(PaymentPlanAgreed(cmd.instalments, cmd.agent))
                case CallOutcome.WRONG_NUMBER:
                    s.sms_unusable = True
                    await workflow.execute_activity_method(
                        LedgerActivities.mark_recipient,
                        MarkRecipientInput(self.input.invoice_id, "phone_invalid"),
                        start_to_close_timeout=LEDGER_TIMEOUT,
                    )
            self.changed = True
            return CallTaskCompleted(cmd.task_id, cmd.outcome, s.stage)

    @complete_call_task.validator
    def _validate_call_task(self, cmd: CompleteCallTask) -> None:
        self.state.require_open()
        if cmd.task_id in self.state.completed_tasks:
            raise ValueError(f"call task {cmd.task_id} is already completed")
        if cmd.task_id not in self.state.open_tasks:
            raise ValueError(f"call task {cmd.task_id} is not a task of this invoice")
        if cmd.outcome == CallOutcome.PROMISE_TO_PAY:
            if cmd.promise_date is None:
                raise ValueError("promise_to_pay needs a promise_date")
            if cmd.promise_date < self.state.clock.day_of(workflow.now()):
                raise ValueError("promise_date is in the past")
        if cmd.outcome == CallOutcome.PAYMENT_PLAN:
            self.state.check_instalments(cmd.instalments)
        if cmd.outcome == CallOutcome.DISPUTE and not cmd.dispute_reason:
            raise ValueError("dispute needs a dispute_reason")

    @workflow.update
    async def agree_payment_plan(self, plan: PaymentPlanAgreed) -> Acknowledged:
        async with self.lock:
            self.state.require_open()
            await self._agree_plan(plan)
            self.changed = True
            return Acknowledged(self.state.stage, self.state.status)

    @agree_payment_plan.validator
    def _validate_plan(self, plan: PaymentPlanAgreed) -> None:
        self.state.require_open()
        self.state.check_instalments(plan.instalments)

    async def _agree_plan(self, plan: PaymentPlanAgreed) -> None:
        await workflow.execute_activity_method(
            LedgerActivities.store_payment_plan,
            StorePaymentPlanInput(self.input.invoice_id, plan.instalments, plan.agreed_by),
            start_to_close_timeout=LEDGER_TIMEOUT,
        )
        await self._close(InvoiceStatus.IN_PAYMENT_PLAN, "in_payment_plan")

    @workflow.update
    def pause(self, action: StewardAction) -> Acknowledged:
        self.state.paused = True
        self.state.stage = "paused"
        return self._steered("paused", action)

    @pause.validator
    def _validate_pause(self, action: StewardAction) -> None:
        self.state.require_open()
        if self.state.paused:
            raise ValueError("dunning is already paused")

    @workflow.update
    def resume(self, action: StewardAction) -> Acknowledged:
        self.state.paused = False
        self._after_hold()
        return self._steered("resumed", action)

    @resume.validator
    def _validate_resume(self, action: StewardAction) -> None:
        self.state.require_open()
        if not self.state.paused:
            raise ValueError("dunning is not paused")

    @workflow.update
    def open_dispute(self, action: StewardAction) -> Acknowledged:
        self.state.disputed = True
        self.state.stage = "disputed"
        return self._steered("dispute_opened", action)

    @open_dispute.validator
    def _validate_open_dispute(self, action: StewardAction) -> None:
        self.state.require_open()
        if self.state.disputed:
            raise ValueError("a dispute is already open")
        if not action.reason:
            raise ValueError("a dispute needs a reason")

    @workflow.update
    def resolve_dispute(self, action: StewardAction) -> Acknowledged:
        self.state.disputed = False
        self._after_hold()
        return self._steered("dispute_resolved", action)

    @resolve_dispute.validator
    def _validate_resolve_dispute(self, action: StewardAction) -> None:
        self.state.require_open()
        if not self.state.disputed:
            raise ValueError("no dispute is open")

    @workflow.update
    def cancel(self, action: StewardAction) -> Acknowledged:
        s = self.state
        s.status = InvoiceStatus.CANCELLED
        s.stage = "cancelled"
        s.open_tasks.clear()
        return self._steered("cancelled", action)

    @cancel.validator
    def _validate_cancel(self, action: StewardAction) -> None:
        self.state.require_open()
        if action.reason not in ("credit_note", "write_off"):
            raise ValueError("cancel reason must be credit_note or write_off")

    def _after_hold(self) -> None:
        s = self.state
        if not (s.paused or s.disputed):
            s.stage = s.steps_done[-1] if s.steps_done else "scheduled"
            self.state.resume_plan(self.state.clock.day_of(workflow.now()))

    def _steered(self, kind: str, action: StewardAction) -> Acknowledged:
        self._audit(kind, {"reason": action.reason}, action.actor)
        self.changed = True
        return Acknowledged(self.state.stage, self.state.status)

    # --- query --------------------------------------------------------------------

    @workflow.query
    def status(self) -> DunningStatus:
        return self.state.view(self.input.invoice_id, self.input.currency)
