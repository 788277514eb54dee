"""The ledger and the CSV import (run on SQLite and, in CI, on PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from dunning_client.start import start_dunning
from ledger.crud import import_invoices, record_payment
from ledger.csv_import import CsvImportError, parse_amount, parse_csv, parse_day
from ledger.models import AuditEvent, Invoice, OutboxMessage
from tests.factories import add_invoices, new_worker, settings_for, start


@pytest.mark.parametrize(
    ("text", "cents"),
    [("4500", 450000), ("4500.00", 450000), ("4 500,00", 450000), ("4\u202f500,00 €", 450000),
     ("4,500.50", 450050), ("4.500,50", 450050), ("0,01", 1), ("12.3", 1230)],
)
def test_parse_amount(text: str, cents: int) -> None:
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text", ["abc", "-5", "0", "1.234", ""])
def test_parse_amount_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


def test_parse_day() -> None:
    assert parse_day("2026-11-22") == parse_day("22/11/2026") == date(2026, 11, 22)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day("11/22/2026")


def _ref() -> str:
    return uuid.uuid4().hex[:8]


def test_french_headers_and_semicolons() -> None:
    ref = _ref()
    rows = parse_csv(
        "Client;Numéro de facture;Date de facture;Montant;Devise;Échéance;Statut\n"
        f"ACME-{ref};F-{ref}-1;01/10/2026;4 500,00;EUR;31/10/2026;En retard\n"
        f"ACME-{ref};F-{ref}-2;05/10/2026;120,50;eur;04/11/2026;payée\n")
    assert [(r.number, r.amount_cents, r.status) for r in rows] == [
        (f"F-{ref}-1", 450000, "open"), (f"F-{ref}-2", 12050, "paid")]
    assert rows[0].due_date == date(2026, 10, 31) and rows[1].currency == "EUR"


def test_bad_lines_are_all_reported_and_nothing_is_parsed() -> None:
    text = ("customer,invoice_number,invoice_date,amount,currency,due_date,status\n"
            "A,F1,2026-10-01,100,EUR,2026-10-31,open\n"
            "A,F2,2026-10-01,abc,EUR,2026-10-31,open\n"
            "A,F1,2026-10-01,100,EUR,2026-10-31,open\n"
            "A,F3,2026-10-01,100,EURO,2026-09-30,open\n"
            "A,F4,2026-10-01,100,EUR,2026-10-31,lost\n")
    with pytest.raises(CsvImportError) as info:
        parse_csv(text)
    assert [e.split(":")[0] for e in info.value.errors] == ["line 3", "line 4", "line 5",
                                                             "line 6"]
    assert "appears twice" in info.value.errors[1]
    with pytest.raises(CsvImportError, match="missing column"):
        parse_csv("customer,amount\nA,100\n")


def test_import_twice_changes_nothing(engine) -> None:
    ref = _ref()
    rows = parse_csv("customer,invoice_number,invoice_date,amount,due_date,status\n"
                     f"C-{ref},F-{ref}-1,2026-10-01,100,2026-10-31,open\n"
                     f"C-{ref},F-{ref}-2,2026-10-01,200,2026-10-31,paid\n")
    with Session(engine) as session:
        first = import_invoices(session=session, rows=rows)
    with Session(engine) as session:
        second = import_invoices(session=session, rows=rows)
        count = session.exec(select(func.count()).select_from(Invoice).where(
            Invoice.number.in_([f"F-{ref}-1", f"F-{ref}-2"]))).one()  # type: ignore[attr-defined]
    assert (first.invoices_created, first.customers_created) == (2, 1)
    assert (second.invoices_created, second.invoices_existing) == (0, 2)
    assert count == 2 and first.open_invoice_ids == second.open_invoice_ids


async def test_each_open_invoice_gets_exactly_one_workflow(env, engine, database_url, executor):
    settings = settings_for(database_url)
    today = (await env.get_current_time()).date()
    ids = add_invoices(engine, due=today + timedelta(days=30), amounts=[1000, 2000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        first = await start(env.client, engine, settings, worker, ids)
        s = settings.model_copy(update={"temporal_task_queue": worker.task_queue})
        again = await start_dunning(env.client, engine, s, ids)  # the import, run twice
        assert [h.id for h in first] == [h.id for h in again] == [f"invoice-{i}" for i in ids]
        runs = {(await h.describe()).run_id for h in first}
        assert runs == {(await h.describe()).run_id for h in again}
        for h in first:
            await h.signal("payment_received", {"payment_id": "x", "amount_cents": 99999999})
            await h.result()
        # A closed invoice is never dunned again, even if imported once more.
        assert await start_dunning(env.client, engine, s, ids) == []


def test_payment_recorded_once_per_gateway_event(engine) -> None:
    [invoice_id] = add_invoices(engine, due=date(2026, 10, 1), amounts=[5000])
    event = f"evt_{_ref()}"
    with Session(engine) as session:
        p1, created1 = record_payment(session=session, source="stripe", external_id=event,
                                      amount_cents=5000, currency="EUR", invoice_id=invoice_id)
        p2, created2 = record_payment(session=session, source="stripe", external_id=event,
                                      amount_cents=5000, currency="EUR", invoice_id=invoice_id)
        assert (created1, created2, p1.id) == (True, False, p2.id)
        received = session.exec(select(AuditEvent).where(
            AuditEvent.invoice_id == invoice_id, AuditEvent.kind == "payment_received")).all()
        assert len(received) == 1


def test_outbox_key_is_unique_per_invoice_step_channel(engine) -> None:
    [invoice_id] = add_invoices(engine, due=date(2026, 10, 1), amounts=[5000])
    with Session(engine) as session:
        customer_id = session.get(Invoice, invoice_id).customer_id  # type: ignore[union-attr]
        for _ in range(2):
            session.add(OutboxMessage(invoice_id=invoice_id, customer_id=customer_id,
                                      step_key="reminder", channel="email",
                                      template="reminder"))
        with pytest.raises(IntegrityError):
            session.commit()
