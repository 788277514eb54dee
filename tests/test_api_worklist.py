"""The worklist ranks every matching task with `rules.priority` and loads whole rows
for the page shown only: pages follow one another in priority order and the total
counts every task. Balances no other test uses (filtered by `min_balance`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from ledger.crud import InvoiceRow, import_invoices
from ledger.models import AuditEvent, CallTask, Invoice, Role
from tests.api_support import api_settings, running_api, token_headers

FLOOR_CENTS = 987_000_000  # 9,870,000.00: above every other test's invoices


def _task(engine, days_late: int, promise_broken: bool = False) -> int:
    today = datetime.now(UTC).date()
    ref = f"W-{uuid.uuid4().hex[:8]}"
    row = InvoiceRow(customer_ref=ref, customer_name="Worklist SA",
                     number=f"W-{uuid.uuid4().hex[:10]}",
                     invoice_date=today - timedelta(days=days_late + 30),
                     due_date=today - timedelta(days=days_late), amount_cents=FLOOR_CENTS)
    with Session(engine) as session:
        [invoice_id] = import_invoices(session=session, rows=[row]).open_invoice_ids
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        task = CallTask(invoice_id=invoice_id, customer_id=invoice.customer_id, step_key="call")
        session.add(task)
        if promise_broken:
            session.add(AuditEvent(invoice_id=invoice_id, customer_id=invoice.customer_id,
                                   kind="promise_broken"))
        session.commit()
        assert task.id is not None
        return task.id


async def test_worklist_pages_in_priority_order(env, engine, database_url):
    # Same amount and customer risk: later is more urgent, a broken promise most of all.
    late_10 = _task(engine, days_late=10)
    late_60 = _task(engine, days_late=60)
    broken = _task(engine, days_late=5, promise_broken=True)
    agent = token_headers(engine, Role.AGENT)
    floor = f"{FLOOR_CENTS / 100:.2f}"
    async with running_api(api_settings(database_url), env.client) as http:
        pages = [(await http.get("/tasks", headers=agent,
                                 params={"min_balance": floor, "size": 1, "page": p})).json()
                 for p in (1, 2, 3, 4)]
    assert [[t["id"] for t in page["items"]] for page in pages] == [[broken], [late_60],
                                                                    [late_10], []]
    assert {page["total"] for page in pages} == {3}
    first = pages[0]["items"][0]
    assert first["promise_broken"] and "promise broken 20" in first["priority_reasons"]
    assert pages[1]["items"][0]["days_overdue"] == 60
