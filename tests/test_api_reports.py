"""Manager reads over HTTP: invoice list with totals, statement, aged balance, DSO,
stage counts. Invoices in a currency no other test uses, so figures are exact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from ledger.crud import InvoiceRow, import_invoices
from ledger.models import Customer, Role
from tests.api_support import api_settings, running_api, token_headers


def _ledger(engine, currency: str) -> tuple[str, int]:
    today = datetime.now(UTC).date()
    ref = f"C-{uuid.uuid4().hex[:8]}"
    # (days overdue, amount): one invoice per aging bucket.
    rows = [InvoiceRow(customer_ref=ref, customer_name="Reports SA",
                       number=f"R-{uuid.uuid4().hex[:10]}", currency=currency,
                       invoice_date=today - timedelta(days=late + 30),
                       due_date=today - timedelta(days=late), amount_cents=amount)
            for late, amount in [(-5, 10000), (10, 20000), (45, 30000), (75, 40000),
                                 (120, 50000)]]
    with Session(engine) as session:
        import_invoices(session=session, rows=rows)
        customer = session.exec(select(Customer).where(Customer.ref == ref)).one()
        assert customer.id is not None
        return ref, customer.id


async def test_invoice_list_statement_aging_dso_and_stages(env, engine, database_url):
    currency = "SEK"
    ref, customer_id = _ledger(engine, currency)
    manager = token_headers(engine, Role.MANAGER)
    async with running_api(api_settings(database_url), env.client) as http:
        page = (await http.get("/invoices", headers=manager,
                               params={"customer_ref": ref, "min_days_overdue": 31,
                                       "size": 2})).json()
        assert [i["days_overdue"] for i in page["items"]] == [120, 75]
        assert page["totals"] == {"count": 3, "amount_cents": 120000, "balance_cents": 120000}
        page = (await http.get("/invoices", headers=manager,
                               params={"customer_ref": ref, "max_days_overdue": 30,
                                       "min_balance": "150.00"})).json()
        assert [i["balance"]["amount"] for i in page["items"]] == ["200.00"]

        st = (await http.get(f"/customers/{customer_id}/statement", headers=manager)).json()
        assert st["outstanding"] == {"amount": "1500.00", "currency": currency}
        assert st["overdue"]["amount"] == "1400.00" and st["open_invoices"] == 5
        assert [(b["bucket"], b["count"], b["balance"]["amount"]) for b in st["aged_balance"]] \
            == [("not_due", 1, "100.00"), ("1-30", 1, "200.00"), ("31-60", 1, "300.00"),
                ("61-90", 1, "400.00"), ("over_90", 1, "500.00")]

        aging = (await http.get("/reports/aging", headers=manager)).json()
        sek = [b for b in aging["buckets"] if b["balance"]["currency"] == currency]
        assert [b["count"] for b in sek] == [1, 1, 1, 1, 1]

        dso = (await http.get("/reports/dso", headers=manager,
                              params={"currency": currency, "period_days": 90})).json()
        # Receivables 1500; invoiced in the last 90 days: 100 + 200 + 300.
        assert dso["receivables"]["amount"] == "1500.00"
        assert dso["credit_sales"]["amount"] == "600.00" and dso["dso_days"] == 225.0

        stages = (await http.get("/reports/stages", headers=manager)).json()
        imported = next(s for s in stages if s["stage"] == "imported" and s["status"] == "open")
        assert imported["count"] >= 5
