"""One conversation per customer over HTTP, against a real worker and Temporal
(time-skipping): split payments through the signed webhook, one call task
completed for every covered invoice, customer-level pause, resume and payment
plan, do not contact, and the customer's timeline."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment

from activities.payloads import DispatchMessageInput, SendMessageInput
from api.payments import deliver_pending_payments
from ledger.crud import record_customer_payment
from ledger.models import (
    AuditEvent,
    CallTask,
    CallTaskInvoice,
    Customer,
    Letter,
    OutboxMessage,
    Payment,
    Role,
)
from tests.api_support import (
    api_settings,
    generic_body,
    generic_headers,
    invoice,
    running_api,
    stripe_event,
    stripe_headers,
    token_headers,
)
from tests.factories import add_invoices, advance_to_stage, messages, new_worker, start
from tests.test_sending import RecordingProvider, _notify
from workflows.dunning import DunningWorkflow, StewardAction


async def _customer_invoices(env, engine, amounts: list[int], spacing: int = 5,
                             first_due_in: int = 10) -> tuple[str, list[int]]:
    """One customer's invoices, each due `spacing` days after the previous one."""
    ref = f"C-{uuid.uuid4().hex[:8]}"
    today = (await env.get_current_time()).date()
    ids = []
    for k, amount in enumerate(amounts):
        ids += add_invoices(engine, due=today + timedelta(days=first_due_in + k * spacing),
                            amounts=[amount], customer_ref=ref)
    return ref, ids


def _customer_id(engine, invoice_id: int) -> int:
    return invoice(engine, invoice_id).customer_id


def _customer_payments(engine, customer_id: int) -> list[Payment]:
    with Session(engine) as session:
        return list(session.exec(select(Payment).where(Payment.customer_id == customer_id)
                                 .order_by(Payment.id)))  # type: ignore[arg-type]


def _applied(engine, invoice_id: int) -> list[dict]:
    with Session(engine) as session:
        return [e.detail for e in session.exec(select(AuditEvent).where(
            AuditEvent.invoice_id == invoice_id, AuditEvent.kind == "payment_applied"))]


async def _close(handles) -> list[str]:
    """Cancel the invoices still open (all before awaiting any result: awaiting skips
    time); their final statuses."""
    for h in handles:
        status = await h.query(DunningWorkflow.status)
        if status.status == "open":
            await h.execute_update(DunningWorkflow.cancel, StewardAction("test", "write_off"))
    return [(await h.result()).status for h in handles]


async def test_customer_payment_through_the_webhook_closes_two_invoices(
        env, engine, database_url, executor):
    settings = api_settings(database_url)
    ref, ids = await _customer_invoices(env, engine, [10000, 20000, 30000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        handles = await start(env.client, engine, settings, worker, ids)
        async with running_api(settings, env.client) as http:
            # 350.00 on the customer, naming no invoice: no exact set, oldest due first.
            body = generic_body(amount="350.00", customer_ref=ref, reference="VIR ACME NOV")
            r = await http.post("/webhooks/payments", content=body, headers=generic_headers(body))
            assert r.status_code == 200, r.text
            ack = r.json()
            assert (ack["status"], ack["matched_by"], ack["signalled"]) == (
                "recorded", "oldest_first", True)
            assert ack["payment_id"] is None and ack["invoice_id"] is None
            assert [(p["invoice_id"], p["amount"]["amount"], p["signalled"])
                    for p in ack["parts"]] == [(ids[0], "100.00", True), (ids[1], "200.00", True),
                                               (ids[2], "50.00", True)]
            # The same event delivered again records nothing more.
            again = await http.post("/webhooks/payments", content=body,
                                    headers=generic_headers(body))
            assert again.json()["status"] == "duplicate"
            assert [p["payment_id"] for p in again.json()["parts"]] == [
                p["payment_id"] for p in ack["parts"]]
            assert [(await h.result()).status for h in handles[:2]] == ["paid", "paid"]
            third = await handles[2].query(DunningWorkflow.status)
            assert (third.status, third.balance_cents) == ("open", 25000)
            await _close(handles[2:])
    # Each workflow got its own payment, once.
    part_ids = [str(p["payment_id"]) for p in ack["parts"]]
    assert [[d["payment_id"] for d in _applied(engine, i)] for i in ids] == [
        [pid] for pid in part_ids]
    assert len(_customer_payments(engine, _customer_id(engine, ids[0]))) == 3
    assert invoice(engine, ids[2]).balance_cents == 25000


async def test_remittance_naming_invoices_and_temporal_down(env, engine, database_url,
                                                            executor):
    settings = api_settings(database_url)
    ref, ids = await _customer_invoices(env, engine, [10000, 20000, 30000])
    numbers = [invoice(engine, i).number for i in ids]
    async with new_worker(env.client, engine, settings, executor) as worker:
        handles = await start(env.client, engine, settings, worker, ids)
        down = api_settings(database_url, temporal_address="127.0.0.1:1",
                            temporal_rpc_timeout_seconds=1)
        async with running_api(down) as http:
            # The first and third invoices named in the remittance, 10 EUR too much.
            body = generic_body(amount="410.00",
                                reference=f"VIR {numbers[2].lower()}, {numbers[0]} MERCI")
            r = await http.post("/webhooks/payments", content=body, headers=generic_headers(body))
            assert r.status_code == 200, r.text
            ack = r.json()
            assert (ack["matched_by"], ack["signalled"]) == ("references", False)
            assert [(p["invoice_id"], p["amount"]["amount"]) for p in ack["parts"]] == [
                (ids[0], "100.00"), (ids[2], "300.00"), (None, "10.00")]
        part_ids = [p["payment_id"] for p in ack["parts"]]
        # Temporal is back: the reconciler delivers both invoices' parts.
        assert await deliver_pending_payments(engine, env.client, only=part_ids) == 2
        assert await deliver_pending_payments(engine, env.client, only=part_ids) == 0
        assert [(await handles[k].result()).status for k in (0, 2)] == ["paid", "paid"]
        assert (await handles[1].query(DunningWorkflow.status)).balance_cents == 20000
        await _close(handles[1:2])
    unapplied = [p for p in _customer_payments(engine, _customer_id(engine, ids[0]))
                 if p.invoice_id is None]
    assert [(p.amount_cents, p.unapplied_cents) for p in unapplied] == [(1000, 1000)]


async def test_stripe_metadata_naming_several_invoices(env, engine, database_url, executor):
    settings = api_settings(database_url)
    ref, ids = await _customer_invoices(env, engine, [10000, 20000, 30000])
    numbers = [invoice(engine, i).number for i in ids]
    async with new_worker(env.client, engine, settings, executor) as worker:
        handles = await start(env.client, engine, settings, worker, ids)
        async with running_api(settings, env.client) as http:
            body = stripe_event(50000, {"invoice_numbers": f"{numbers[1]},{numbers[2]}"})
            r = await http.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
            assert r.status_code == 200, r.text
            assert r.json()["matched_by"] == "references"
            assert [(p["invoice_id"], p["amount"]["amount"]) for p in r.json()["parts"]] == [
                (ids[1], "200.00"), (ids[2], "300.00")]
            assert [(await handles[k].result()).status for k in (1, 2)] == ["paid", "paid"]
            assert (await handles[0].query(DunningWorkflow.status)).balance_cents == 10000
            await _close(handles[:1])


async def test_one_call_task_completed_for_every_invoice(env, engine, database_url, executor):
    settings = api_settings(database_url)
    today = (await env.get_current_time()).date()
    ref = f"C-{uuid.uuid4().hex[:8]}"
    ids = add_invoices(engine, due=today + timedelta(days=1), amounts=[10000, 20000, 30000],
                       customer_ref=ref)
    [stranger] = add_invoices(engine, due=today, amounts=[5000])
    agent = token_headers(engine, Role.AGENT)
    manager = token_headers(engine, Role.MANAGER)
    async with new_worker(env.client, engine, settings, executor) as worker:
        handles = await start(env.client, engine, settings, worker, ids)
        for h in handles:
            await advance_to_stage(env, h, "call")
        async with running_api(settings, env.client) as http:
            tasks = (await http.get("/tasks", params={"customer_ref": ref},
                                    headers=agent)).json()["items"]
            assert len(tasks) == 1
            tid = tasks[0]["id"]
            promise = (today + timedelta(days=40)).isoformat()
            bad = {
                "unknown invoice": ([{"invoice_id": 999999999, "outcome": "dispute"}], 422),
                "another customer's": ([{"invoice_id": stranger, "outcome": "dispute"}], 422),
                "empty list": ([], 422),
                "listed twice": ([{"invoice_id": ids[0]}, {"invoice_id": ids[0]}], 422),
                "negative instalment": ([{"invoice_id": ids[0], "outcome": "payment_plan",
                                          "instalments": [{"due_date": promise,
                                                           "amount": "-100.00"}]}], 422),
            }
            for name, (listed, status) in bad.items():
                r = await http.post(f"/tasks/{tid}/complete", headers=agent, json={
                    "outcome": "promise_to_pay", "promise_date": promise, "invoices": listed})
                assert r.status_code == status, (name, r.text)
                assert r.json()["error"]["message"], name
            # Nothing changed: every invoice still waits on the call.
            assert [(await h.query(DunningWorkflow.status)).stage for h in handles] == [
                "call"] * 3
            r = await http.post(f"/tasks/{tid}/complete", headers=agent, json={
                "outcome": "promise_to_pay", "promise_date": promise, "notes": "AP clerk",
                "invoices": [{"invoice_id": ids[2], "outcome": "dispute",
                              "dispute_reason": "not delivered"}]})
            assert r.status_code == 200, r.text
            done = r.json()
            stages = {i["invoice_id"]: i["stage"] for i in done["invoices"]}
            with Session(engine) as session:
                opener = session.get(CallTask, tid).invoice_id  # type: ignore[union-attr]
            # `stage` is that of the invoice that opened the task (whichever came first).
            assert done["task_status"] == "completed" and done["stage"] == stages[opener]
            assert [(i["invoice_id"], i["done"], i["outcome"], i["stage"])
                    for i in done["invoices"]] == [
                (ids[0], True, "promise_to_pay", "promise_to_pay"),
                (ids[1], True, "promise_to_pay", "promise_to_pay"),
                (ids[2], True, "dispute", "disputed")]
            again = await http.post(f"/tasks/{tid}/complete", headers=agent,
                                    json={"outcome": "no_answer"})
            assert again.status_code == 409
            # The customer's timeline shows the grouped messages once, for all three.
            customer_id = _customer_id(engine, ids[0])
            timeline = (await http.get(f"/customers/{customer_id}/timeline",
                                       headers=manager)).json()
            assert await _close(handles) == ["cancelled"] * 3
    with Session(engine) as session:
        task = session.get(CallTask, tid)
        assert task is not None and (task.status, task.outcome) == ("completed", "mixed")
        links = session.exec(select(CallTaskInvoice).where(CallTaskInvoice.task_id == tid)
                             .order_by(CallTaskInvoice.invoice_id)).all()  # type: ignore[arg-type]
        assert [link.outcome for link in links] == ["promise_to_pay", "promise_to_pay", "dispute"]
    grouped = [e for e in timeline["entries"] if e["kind"] == "message_sent"]
    assert grouped and all(e["invoice_ids"] == sorted(ids) for e in grouped)
    assert all(len(e["invoice_numbers"]) == 3 and "one message for invoices" in e["summary"]
               for e in grouped)
    sent = {m.provider_id for i in ids for m in messages(engine, i) if m.status == "sent"}
    assert {e["detail"]["provider_id"] for e in grouped} == sent
    kinds = [e["kind"] for e in timeline["entries"]]
    assert kinds.count("call_task_completed") == 3 and "dispute_opened" in kinds


async def test_customer_pause_resume_and_payment_plan(env, engine, database_url, executor):
    settings = api_settings(database_url)
    ref, ids = await _customer_invoices(env, engine, [10000, 20000, 30000])
    [stranger] = add_invoices(engine, due=date(2026, 12, 1), amounts=[5000])
    customer_id = _customer_id(engine, ids[0])
    manager = token_headers(engine, Role.MANAGER, f"maria-{ref}")
    agent = token_headers(engine, Role.AGENT)
    async with new_worker(env.client, engine, settings, executor) as worker:
        handles = await start(env.client, engine, settings, worker, ids)
        async with running_api(settings, env.client) as http:
            url = f"/customers/{customer_id}"
            assert (await http.post(f"{url}/pause", json={}, headers=agent)).status_code == 403
            assert (await http.post("/customers/999999999/pause", json={},
                                    headers=manager)).status_code == 404
            r = await http.post(f"{url}/pause", json={"reason": "on holiday"}, headers=manager)
            assert r.status_code == 200, r.text
            assert [(i["invoice_id"], i["done"], i["stage"]) for i in r.json()["invoices"]] == [
                (i, True, "paused") for i in ids]
            assert all([(await h.query(DunningWorkflow.status)).paused for h in handles])
            r = await http.post(f"{url}/pause", json={}, headers=manager)
            assert r.status_code == 409 and len(r.json()["error"]["detail"]) == 3
            assert {d["reason"] for d in r.json()["error"]["detail"]} == {
                "dunning is already paused"}
            r = await http.post(f"{url}/resume", json={"reason": "back"}, headers=manager)
            assert r.status_code == 200 and all(i["done"] for i in r.json()["invoices"])
            assert not any([(await h.query(DunningWorkflow.status)).paused for h in handles])

            # A plan of three monthly instalments of 200 EUR for the 600 EUR owed.
            d = (await env.get_current_time()).date()
            months = [(d + timedelta(days=30 * k)).isoformat() for k in (1, 2, 3)]
            plan = {"instalments": [{"due_date": m, "amount": "200.00"} for m in months]}
            bad = [
                {"instalments": [{"due_date": months[0], "amount": "599.99"}]},
                {"instalments": [{"due_date": months[0], "amount": "-600.00"}]},
                {"instalments": []},
                {**plan, "invoice_ids": []},
                {**plan, "invoice_ids": [999999999]},
                {**plan, "invoice_ids": [ids[0], stranger]},
            ]
            for body in bad:
                r = await http.post(f"{url}/payment-plan", json=body, headers=manager)
                assert r.status_code == 422, (body, r.text)
            assert [(await h.query(DunningWorkflow.status)).status for h in handles] == [
                "open"] * 3
            r = await http.post(f"{url}/payment-plan", json=plan, headers=manager)
            assert r.status_code == 200, r.text
            assert all(i["stage"] == "in_payment_plan" for i in r.json()["invoices"])
            assert [(await h.result()).status for h in handles] == ["in_payment_plan"] * 3
            timeline = (await http.get(f"{url}/timeline", headers=manager)).json()
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).where(
            AuditEvent.customer_id == customer_id, AuditEvent.invoice_id.is_(None))  # type: ignore[union-attr]
            .order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
        plans = session.exec(select(AuditEvent).where(
            AuditEvent.invoice_id.in_(ids),  # type: ignore[union-attr]
            AuditEvent.kind == "payment_plan_agreed").order_by(AuditEvent.invoice_id)).all()  # type: ignore[arg-type]
    assert [(e.kind, e.actor) for e in events] == [
        ("customer_paused", f"maria-{ref}"), ("customer_resumed", f"maria-{ref}"),
        ("customer_payment_plan", f"maria-{ref}")]
    # Oldest due first: the first invoice takes 100 of the first 200, the second the
    # other 100 and 100 of the second, the third the rest.
    assert [[(i["due_date"], i["amount_cents"]) for i in e.detail["instalments"]]
            for e in plans] == [[(months[0], 10000)], [(months[0], 10000), (months[1], 10000)],
                                [(months[1], 10000), (months[2], 20000)]]
    kinds = [e["kind"] for e in timeline["entries"]]
    assert kinds.count("paused") == 3 and "customer_paused" in kinds


async def test_do_not_contact_suppresses_every_send(env, engine, database_url, executor):
    settings = api_settings(database_url)
    provider = RecordingProvider()
    providers = {"email": provider, "sms": provider, "letter": provider}
    today = (await env.get_current_time()).date()
    ref = f"C-{uuid.uuid4().hex[:8]}"
    ids = add_invoices(engine, due=today + timedelta(days=1), amounts=[10000, 20000],
                       customer_ref=ref)
    customer_id = _customer_id(engine, ids[0])
    manager = token_headers(engine, Role.MANAGER)
    agent = token_headers(engine, Role.AGENT)
    async with new_worker(env.client, engine, settings, executor, providers) as worker:
        async with running_api(settings, env.client) as http:
            r = await http.patch(f"/customers/{customer_id}", headers=manager,
                                 json={"do_not_contact": True, "reason": "lawyer's request"})
            assert r.status_code == 200 and r.json()["do_not_contact"] is True
            assert (await http.patch(f"/customers/{customer_id}", headers=agent,
                                     json={"do_not_contact": False})).status_code == 403
            assert (await http.patch(f"/customers/{customer_id}", headers=manager,
                                     json={})).status_code == 422
            handles = await start(env.client, engine, settings, worker, ids)
            for h in handles:
                await advance_to_stage(env, h, "call")
            # Nothing went out, and the call task is on hold.
            assert provider.accepted == []
            rows = [m for i in ids for m in messages(engine, i)]
            assert rows and {(m.status, m.error) for m in rows} == {
                ("skipped", "customer is marked do not contact")}
            assert (await http.get("/tasks", params={"customer_ref": ref},
                                   headers=agent)).json()["items"] == []
            with Session(engine) as session:
                tid = session.exec(select(CallTask.id).where(
                    CallTask.customer_id == customer_id)).one()
            r = await http.post(f"/tasks/{tid}/claim", headers=agent)
            assert r.status_code == 409 and r.json()["error"]["code"] == "do_not_contact"
            # Still in the reports.
            statement = await http.get(f"/customers/{customer_id}/statement", headers=manager)
            assert statement.json()["outstanding"]["amount"] == "300.00"
            assert statement.json()["customer"]["do_not_contact"] is True
            listed = await http.get("/invoices", params={"customer_ref": ref}, headers=manager)
            assert listed.json()["totals"]["count"] == 2
            # On to the formal notice: no letter is composed, nothing is sent.
            for h in handles:
                await advance_to_stage(env, h, "mise_en_demeure")
            assert provider.accepted == []
            with Session(engine) as session:
                assert session.exec(select(Letter).where(
                    Letter.invoice_id.in_(ids))).all() == []  # type: ignore[attr-defined]
            assert {m.status for i in ids for m in messages(engine, i)} == {"skipped"}
            r = await http.patch(f"/customers/{customer_id}", headers=manager,
                                 json={"do_not_contact": False})
            assert r.json()["do_not_contact"] is False
            tasks = (await http.get("/tasks", params={"customer_ref": ref},
                                    headers=agent)).json()["items"]
            assert [t["id"] for t in tasks] == [tid]
            await _close(handles)
    with Session(engine) as session:
        marks = session.exec(select(AuditEvent).where(
            AuditEvent.customer_id == customer_id,
            AuditEvent.kind.startswith("do_not_contact"))  # type: ignore[attr-defined]
            .order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    assert [(e.kind, e.detail["reason"]) for e in marks] == [
        ("do_not_contact_set", "lawyer's request"), ("do_not_contact_cleared", "")]


def test_a_message_queued_before_do_not_contact_is_not_sent(engine) -> None:
    """Marked while a request waits for its window: the window's message is skipped."""
    ids = add_invoices(engine, due=date(2026, 1, 10), amounts=[10000, 20000])
    provider = RecordingProvider()
    notify = _notify(engine, provider)
    env = ActivityEnvironment()
    queued = [env.run(notify.enqueue_message, SendMessageInput(
        invoice_id=i, step_key="reminder", channel="email", template="reminder",
        balance_cents=10000, window="2026-01-11")) for i in ids]
    assert {q.status for q in queued} == {"queued"}
    with Session(engine) as session:
        customer = session.get(Customer, _customer_id(engine, ids[0]))
        assert customer is not None
        customer.do_not_contact = True
        session.add(customer)
        session.commit()
    results = [env.run(notify.dispatch_message, DispatchMessageInput(q.outbox_id))
               for q in queued]
    assert [r.status for r in results] == ["skipped", "skipped"]
    assert provider.accepted == []
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).where(
            OutboxMessage.invoice_id.in_(ids))).all()  # type: ignore[attr-defined]
    assert {r.status for r in rows} == {"skipped"} and rows[0].batch_id == rows[1].batch_id


async def test_transfer_recorded_by_hand(env, engine, database_url, executor):
    settings = api_settings(database_url)
    ref, ids = await _customer_invoices(env, engine, [10000, 20000])
    [stranger] = add_invoices(engine, due=date(2026, 12, 1), amounts=[5000])
    stranger_number = invoice(engine, stranger).number
    customer_id = _customer_id(engine, ids[0])
    manager = token_headers(engine, Role.MANAGER, f"maria-{ref}")
    async with new_worker(env.client, engine, settings, executor) as worker:
        handles = await start(env.client, engine, settings, worker, ids)
        async with running_api(settings, env.client) as http:
            url = f"/customers/{customer_id}/payments"
            transfer = {"transfer_id": f"VIR-{ref}", "amount": "300.00", "currency": "EUR"}
            for body in ({**transfer, "invoice_numbers": [stranger_number]},
                         {**transfer, "invoice_numbers": ["NO-SUCH-INVOICE"]},
                         {**transfer, "amount": "-300.00"}, {**transfer, "amount": "0"}):
                r = await http.post(url, json=body, headers=manager)
                assert r.status_code == 422, (body, r.text)
            assert _customer_payments(engine, customer_id) == []
            r = await http.post(url, json=transfer, headers=manager)
            assert r.status_code == 200, r.text
            assert r.json()["matched_by"] == "exact_set" and len(r.json()["parts"]) == 2
            again = await http.post(url, json=transfer, headers=manager)
            assert again.json()["status"] == "duplicate"
            assert [(await h.result()).status for h in handles] == ["paid", "paid"]
    assert len(_customer_payments(engine, customer_id)) == 2
    with Session(engine) as session:
        recorded = session.exec(select(AuditEvent).where(
            AuditEvent.customer_id == customer_id,
            AuditEvent.kind == "customer_payment_recorded")).all()
    assert [(e.actor, e.detail["transfer_id"]) for e in recorded] == [
        (f"maria-{ref}", f"VIR-{ref}")]


def test_a_second_transfer_is_not_split_over_a_balance_already_paid(engine) -> None:
    """Before the first transfer's parts reach the workflows (the ledger's balances
    do not show them yet), a second one goes to what is still owed."""
    ids = add_invoices(engine, due=date(2026, 1, 10), amounts=[10000, 20000])
    customer_id = _customer_id(engine, ids[0])
    t1, t2 = f"T-{uuid.uuid4().hex[:8]}", f"T-{uuid.uuid4().hex[:8]}"
    with Session(engine, expire_on_commit=False) as session:
        first = record_customer_payment(session=session, source="bank", external_id=t1,
                                        customer_id=customer_id, amount_cents=15000,
                                        currency="EUR")
        second = record_customer_payment(session=session, source="bank", external_id=t2,
                                         customer_id=customer_id, amount_cents=15000,
                                         currency="EUR")
        again = record_customer_payment(session=session, source="bank", external_id=t2,
                                         customer_id=customer_id, amount_cents=15000,
                                         currency="EUR")
    assert [(p.invoice_id, p.amount_cents) for p in first] == [(ids[0], 10000), (ids[1], 5000)]
    assert [(p.invoice_id, p.amount_cents) for p in second] == [(ids[1], 15000)]
    assert [p.id for p in again] == [p.id for p in second]


def test_letters_of_a_do_not_contact_customer_are_held(engine, database_url, monkeypatch,
                                                        tmp_path) -> None:
    """A letter composed before the mark is not printed while it stands."""
    from typer.testing import CliRunner

    import cli
    from settings import get_settings

    [invoice_id] = add_invoices(engine, due=date(2025, 5, 31), amounts=[450000])
    provider = RecordingProvider()
    ActivityEnvironment().run(_notify(engine, provider).send_message, SendMessageInput(
        invoice_id=invoice_id, step_key="mise_en_demeure", channel="letter",
        template="mise_en_demeure", deadline_days=8, as_of=date(2025, 6, 30)))
    with Session(engine) as session:
        customer = session.get(Customer, _customer_id(engine, invoice_id))
        assert customer is not None
        customer.do_not_contact = True
        session.add(customer)
        session.commit()
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(cli.app, ["letters", "--export", str(tmp_path),
                                           "--mark-posted"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    assert "held (customer marked do not contact)" in out.output
    number = invoice(engine, invoice_id).number
    assert list(tmp_path.glob(f"*-{number}-*.pdf")) == []
    with Session(engine) as session:
        [letter] = session.exec(select(Letter).where(Letter.invoice_id == invoice_id)).all()
    assert letter.postal_status == "queued"
