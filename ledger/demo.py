"""A small demo ledger: a few French and foreign customers, invoices at every
point of the cycle (not yet due, just due, long overdue, already paid)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from ledger.crud import InvoiceRow

# (ref, name, segment, language, country, email, phone)
CUSTOMERS = [
    ("C-ATLAS", "Atlas Bâtiment SARL", "b2b", "fr", "FR", "compta@atlas-batiment.example",
     "+33612340001"),
    ("C-BRIOCHE", "Boulangerie Brioche & Fils", "b2b", "fr", "FR", "gerant@brioche.example",
     "+33612340002"),
    ("C-NORDIC", "Nordic Freight AB", "b2b", "en", "SE", "ap@nordicfreight.example",
     "+46701234567"),
    ("C-DURAND", "Marie Durand", "b2c", "fr", "FR", "marie.durand@mail.example", "+33612340004"),
    ("C-LUMEN", "Lumen Conseil SAS", "b2b", "fr", "FR", None, "+33612340005"),
]
# (customer, days from today to the due date, amount in cents, status)
INVOICES = [
    ("C-ATLAS", 6, 450000, "open"), ("C-ATLAS", -2, 125000, "open"),
    ("C-ATLAS", -15, 98050, "open"), ("C-BRIOCHE", 3, 32000, "open"),
    ("C-BRIOCHE", -40, 18000, "open"), ("C-NORDIC", 1, 1200000, "open"),
    ("C-NORDIC", -9, 540000, "open"), ("C-DURAND", 2, 8990, "open"),
    ("C-DURAND", -20, 14900, "open"), ("C-LUMEN", -1, 76000, "open"),
    ("C-LUMEN", -30, 22000, "paid"),
]


def demo_rows(today: date | None = None) -> list[InvoiceRow]:
    today = today or date.today()
    customers = {c[0]: c for c in CUSTOMERS}
    rows = []
    for n, (ref, days, amount, status) in enumerate(INVOICES, start=1):
        _, name, segment, language, country, email, phone = customers[ref]
        due = today + timedelta(days=days)
        rows.append(InvoiceRow(
            customer_ref=ref, customer_name=name, number=f"DEMO-{today:%Y%m%d}-{n:03d}",
            invoice_date=due - timedelta(days=30), due_date=due, amount_cents=amount,
            status=status, segment=segment, email=email, phone=phone, language=language,
            country=country, address="12 avenue des Demos, 75011 Paris",
        ))
    return rows


def demo_csv(today: date | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["customer", "customer_name", "invoice_number", "invoice_date", "amount",
                     "currency", "due_date", "status", "segment", "email", "phone", "language",
                     "country"])
    for r in demo_rows(today):
        writer.writerow([r.customer_ref, r.customer_name, r.number, r.invoice_date.isoformat(),
                         f"{r.amount_cents / 100:.2f}", r.currency, r.due_date.isoformat(),
                         r.status, r.segment, r.email or "", r.phone or "", r.language,
                         r.country])
    return out.getvalue()
