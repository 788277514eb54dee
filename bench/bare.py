"""The bare engine: a minimal workflow with the same timers and no-op activities
as the Relance path, and nothing else (no database, no templates, no rules).

Its shape is a list of steps, each "wait this long, then run this many no-op
activities one after the other"; the cycle benchmark reads the shape off a real
Relance history (`bench.cycle.history_shape`), so both sides do the same count of each.

This module imports only the standard library and temporalio, which the
workflow sandbox passes through: it re-imports nothing else per workflow."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow

NOOP_TIMEOUT = timedelta(seconds=30)


@dataclass
class BareStep:
    timer_seconds: float = 0.0
    activities: int = 0


@dataclass
class BareInput:
    invoice_id: int = 0
    steps: list[BareStep] = field(default_factory=list)


@dataclass
class NoopInput:
    invoice_id: int = 0
    seq: int = 0


@activity.defn(name="bare_noop")
def noop(work: NoopInput) -> None:
    """Does nothing: what an activity costs the engine, without the work."""


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, input: BareInput) -> int:
        done = 0
        for step in input.steps:
            if step.timer_seconds > 0:
                await workflow.sleep(timedelta(seconds=step.timer_seconds))
            for _ in range(step.activities):
                done += 1
                await workflow.execute_activity(noop, NoopInput(input.invoice_id, done),
                                                start_to_close_timeout=NOOP_TIMEOUT)
        return done



@dataclass
class BarePaymentInput:
    invoice_id: int = 0
    balance_cents: int = 0
    wait_seconds: float = 0.0
    # Read off a Relance history: no-op activities after a payment that leaves a
    # balance, and after the one that settles the invoice.
    activities_per_payment: int = 0
    activities_on_close: int = 0


@workflow.defn(name="BarePaymentWorkflow")
class BarePaymentWorkflow:
    """Waits on a timer until payments settle the balance (the shape of an invoice
    mid-cycle receiving payments), then closes."""

    def __init__(self) -> None:
        self.received: list[int] = []

    @workflow.run
    async def run(self, input: BarePaymentInput) -> int:
        balance, done = input.balance_cents, 0
        while balance > 0:
            try:
                await workflow.wait_condition(lambda: bool(self.received),
                                              timeout=timedelta(seconds=input.wait_seconds))
            except TimeoutError:
                continue
            balance -= sum(self.received)
            self.received.clear()
            steps = input.activities_per_payment if balance > 0 else input.activities_on_close
            for _ in range(steps):
                done += 1
                await workflow.execute_activity(noop, NoopInput(input.invoice_id, done),
                                                start_to_close_timeout=NOOP_TIMEOUT)
        return done

    @workflow.signal(name="paid")
    def paid(self, amount_cents: int) -> None:
        self.received.append(amount_cents)
