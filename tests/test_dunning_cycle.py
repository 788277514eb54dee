"""Full policy runs under the time-skipping server, real calendar."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import add_invoices, audit_kinds, messages, new_worker, settings_for, start


async def test_b2b_policy_runs_to_escalation(env, engine, database_url, executor):
    settings = settings_for(database_url)
    today = (await env.get_current_time()).date()
    [invoice_id] = add_invoices(engine, due=today + timedelta(days=10), amounts=[450000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        result = await handle.result()
    assert result.status == "escalated"
    assert result.steps_done == ["pre_reminder", "reminder", "sms_reminder", "call",
                                 "last_reminder", "mise_en_demeure", "escalation"]
    sent = [(m.step_key, m.channel, m.status) for m in messages(engine, invoice_id)]
    assert sent == [("pre_reminder", "email", "sent"), ("reminder", "email", "sent"),
                    ("sms_reminder", "sms", "sent"), ("last_reminder", "email", "sent"),
                    ("mise_en_demeure", "letter", "sent"), ("mise_en_demeure", "email", "sent")]
    body = messages(engine, invoice_id)[1].body
    assert "4 500,00 EUR" in body.replace("\u202f", " ").replace("\xa0", " ")
    kinds = audit_kinds(engine, invoice_id)
    assert kinds[0] == "invoice_imported" and kinds[-1] == "dunning_closed"
    assert kinds.count("message_sent") == 6 and "call_task_created" in kinds
