"""Generated tracking tables: N invoices over customers in the issue's proportion
(600 customers for 10,000 invoices), with every contact a message needs."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

CUSTOMERS_PER_INVOICE = 600 / 10_000
HEADER = ["customer", "customer_name", "invoice_number", "invoice_date", "amount", "currency",
          "due_date", "status", "segment", "email", "phone", "language", "country", "address"]


def customer_count(invoices: int) -> int:
    return max(1, round(invoices * CUSTOMERS_PER_INVOICE))


def invoices_csv(invoices: int, *, prefix: str, due: date) -> str:
    """A CSV as `relance import` reads it; amounts and languages vary by line."""
    customers = customer_count(invoices)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for i in range(invoices):
        c = i % customers
        writer.writerow([
            f"{prefix}-C{c:05d}", f"Client {prefix} {c}", f"{prefix}-F{i:06d}",
            (due - timedelta(days=30)).isoformat(), f"{100 + (i * 37) % 9000},{i % 100:02d}",
            "EUR", due.isoformat(), "open", "b2b", f"ap{c}@client.example",
            f"+3361{c:07d}", "fr" if c % 3 else "en", "FR", f"{c} rue du Client, 69001 Lyon",
        ])
    return out.getvalue()
