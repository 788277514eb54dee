"""On a real dev server: search attributes are registered, and invoices can be
listed by stage, customer, amount due and next action time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests.factories import add_invoices, eventually, new_worker, reach_stage, settings_for, start
from workflows.dunning import (
    AMOUNT_DUE,
    CUSTOMER,
    NEXT_ACTION_AT,
    STAGE,
    DunningWorkflow,
    StewardAction,
)


async def test_list_by_stage_customer_amount_and_next_action(dev_env, engine, database_url,
                                                             executor):
    client = dev_env.client
    # Real time here, so one policy day lasts an hour: sending hours and weekends do
    # not apply and the late invoice's reminder is due at once whatever the clock
    # says, while its next step stays hours away; a one-second gathering window.
    settings = settings_for(database_url, day_seconds=3600, group_gather_seconds=1)
    today = date.today()
    early = add_invoices(engine, due=today + timedelta(days=20), amounts=[100000, 250000])
    late = add_invoices(engine, due=today - timedelta(days=3), amounts=[70000])
    async with new_worker(client, engine, settings, executor) as worker:
        handles = await start(client, engine, settings, worker, early + late)
        await reach_stage(handles[2], "reminder")

        async def listed(query: str) -> set[str]:
            return {wf.id async for wf in client.list_workflows(query)}

        async def check() -> None:
            ids = {h.id for h in handles}
            reminded = await listed("RelanceStage = 'reminder'")
            assert f"invoice-{late[0]}" in reminded and not (reminded & {h.id for h in handles[:2]})
            big = await listed("RelanceAmountDue >= 2000 AND ExecutionStatus = 'Running'")
            assert big & ids == {f"invoice-{early[1]}"}
            soon = datetime.now(UTC) + timedelta(days=30)
            due_soon = await listed(f"RelanceNextActionAt < '{soon.isoformat()}'")
            assert ids <= due_soon

        await eventually(check, timeout=20)
        desc = await handles[0].describe()
        sa = desc.typed_search_attributes
        assert sa.get(STAGE) == "scheduled" and sa.get(AMOUNT_DUE) == 1000.0
        assert sa.get(CUSTOMER) and sa.get(NEXT_ACTION_AT) is not None

        async def same_customer() -> None:
            found = await listed(f"RelanceCustomer = '{sa.get(CUSTOMER)}'")
            assert found == {h.id for h in handles[:2]}

        await eventually(same_customer, timeout=20)
        for h in handles:
            await h.execute_update(DunningWorkflow.cancel, StewardAction("test", "write_off"))
