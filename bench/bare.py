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

