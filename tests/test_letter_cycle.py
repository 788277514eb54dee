"""The mise en demeure step through the real workflow: letter stored, queued for
registered post, attached to the step's email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from ledger.models import Letter
from rules.late_payment import RateTable, b2b_claim
from tests.factories import add_invoices, messages, new_worker, settings_for, start

TEST_RATES = Path(__file__).parent / "data" / "rates-test-fixture.csv"


async def test_b2b_cycle_stores_and_queues_the_letter(env, engine, database_url, executor):
    # The activity dates the letter with the worker's clock; the invoice is overdue
    # by then, so interest (at the fixture's 2026-H2 rate) and the 40 EUR apply.
    today = datetime.now(UTC).date()
    settings = settings_for(database_url, rates_file=str(TEST_RATES))
    [invoice_id] = add_invoices(engine, due=today - timedelta(days=40), amounts=[250000])
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        result = await handle.result()
    assert result.status == "escalated"
    by_channel = {(m.step_key, m.channel): m for m in messages(engine, invoice_id)}
    post = by_channel[("mise_en_demeure", "letter")]
    email = by_channel[("mise_en_demeure", "email")]
    assert (post.provider, post.status, email.status) == ("post-queue", "sent", "sent")
    with Session(engine) as session:
        letter = session.exec(select(Letter).where(Letter.invoice_id == invoice_id)).one()
    assert letter.outbox_id == post.id and letter.postal_status == "queued"
    # 40 days at the fixture's 12 % on 2500.00 = 32.88 (cut per half-year if the
    # period straddles one, hence the rule rather than a literal).
    expected = b2b_claim(number="x", invoice_date=letter.letter_date,
                         due_date=today - timedelta(days=40), amount_cents=250000, receipts=[],
                         as_of=letter.letter_date, rates=RateTable.load(TEST_RATES))
    assert abs(expected.interest_cents - 3288) <= 1
    assert (letter.principal_cents, letter.interest_cents, letter.indemnity_cents) == (
        250000, expected.interest_cents, 4000)
    assert "Indemnité forfaitaire pour frais de recouvrement : 40,00 EUR" in email.body
