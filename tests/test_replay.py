"""Running workflows must survive code changes: every history recorded under
tests/histories/ (one per released workflow shape and path) replays against
today's DunningWorkflow. Record new ones with RELANCE_RECORD_HISTORIES=1."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from dunning_client.converter import relance_data_converter
from tests.factories import add_invoices, advance_to_stage, new_worker, settings_for, start
from workflows.dunning import (
    CallOutcome,
    CompleteCallTask,
    DunningWorkflow,
    PaymentReceived,
    StewardAction,
)

HISTORIES = Path(__file__).parent / "histories"
RECORDING = os.environ.get("RELANCE_RECORD_HISTORIES") == "1"


def _histories() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def test_histories_are_committed() -> None:
    assert len(_histories()) >= 3, "tests/histories/ lost its recorded workflow histories"


@pytest.mark.parametrize("path", _histories(), ids=lambda p: p.stem)
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[DunningWorkflow], data_converter=relance_data_converter)
    await replayer.replay_workflow(history)


@pytest.mark.skipif(not RECORDING, reason="set RELANCE_RECORD_HISTORIES=1 to record")
async def test_record_histories(env, engine, database_url, executor) -> None:
    settings = settings_for(database_url)
    today = (await env.get_current_time()).date()
    ids = add_invoices(engine, due=today + timedelta(days=10), amounts=[450000, 80000, 60000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        full, paid, steered = await start(env.client, engine, settings, worker, ids)
        await advance_to_stage(env, paid, "reminder")
        await paid.signal(DunningWorkflow.payment_received, PaymentReceived("p1", 30000))
        await paid.signal(DunningWorkflow.payment_received, PaymentReceived("p1", 30000))
        await paid.signal(DunningWorkflow.payment_received, PaymentReceived("p2", 50000))
        status = await advance_to_stage(env, steered, "call")
        await steered.execute_update(DunningWorkflow.complete_call_task, CompleteCallTask(
            task_id=status.open_tasks[0], outcome=CallOutcome.PROMISE_TO_PAY,
            promise_date=(await env.get_current_time()).date() + timedelta(days=5)))
        await env.sleep(timedelta(days=10))
        await steered.execute_update(DunningWorkflow.open_dispute,
                                     StewardAction("manager", "price disagreement"))
        await steered.execute_update(DunningWorkflow.resolve_dispute,
                                     StewardAction("manager", "agreed"))
        await steered.execute_update(DunningWorkflow.pause, StewardAction("manager", "holiday"))
        await steered.execute_update(DunningWorkflow.resume, StewardAction("manager"))
        await steered.execute_update(DunningWorkflow.cancel,
                                     StewardAction("manager", "credit_note"))
        for name, handle in (("b2b_full_cycle", full), ("partial_duplicate_paid", paid),
                             ("promise_dispute_pause_cancel", steered)):
            await handle.result()
            history = await handle.fetch_history()
            (HISTORIES / f"v1_{name}.json").write_text(history.to_json())
