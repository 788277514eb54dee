"""One formal notice per customer: several invoices of a customer reaching the
mise en demeure in one sending window get one letter (each invoice's interest and
40 EUR, the grand total), stored once, posted once, attached once to the email."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from temporalio.exceptions import ApplicationError

from activities.notify import NotifyActivities
from activities.payloads import DispatchMessageInput, SendMessageInput, SendMessageResult
from activities.providers.outbox import OutboxProvider
from activities.rendering import MessageRenderer
from ledger.letters import postal_queue
from ledger.models import AuditEvent, Invoice, Letter, LetterInvoice, MessageBatch
from rules.late_payment import RateTable, b2b_claim
from tests.factories import add_invoices, new_worker, settings_for, start
from tests.test_letter import CREDITOR, pdf_text
from tests.test_sending import RecordingProvider

TEST_RATES = Path(__file__).parent / "data" / "rates-test-fixture.csv"
AS_OF = date(2025, 7, 15)


def notice(invoice_id: int, channel: str, as_of: date = AS_OF, b2b: bool = True
           ) -> SendMessageInput:
    return SendMessageInput(invoice_id=invoice_id, step_key="mise_en_demeure", channel=channel,
                            template="mise_en_demeure", deadline_days=8 if b2b else 15,
                            recovery_indemnity=b2b, as_of=as_of, window=as_of.isoformat(),
                            tone=4)


def activities_with(engine, post, email, **kwargs) -> NotifyActivities:  # type: ignore[no-untyped-def]
    return NotifyActivities(engine, {"email": email, "sms": OutboxProvider(), "letter": post},
                            MessageRenderer(), CREDITOR, **kwargs)


def send_step(activities: NotifyActivities, ids: list[int], channel: str,
              as_of: date = AS_OF, b2b: bool = True) -> list[SendMessageResult]:
    """What the invoices' workflows do at the step: each queues its request, then
    each dispatches (the first dispatch sends the customer's one message)."""
    queued = [activities.enqueue_message(notice(i, channel, as_of, b2b)) for i in ids]
    assert {q.status for q in queued} == {"queued"}
    return [activities.dispatch_message(DispatchMessageInput(q.outbox_id)) for q in queued]


def customer_invoices(engine, amounts_by_due: dict[date, int], **kwargs) -> list[int]:  # type: ignore[no-untyped-def]
    ids: list[int] = []
    ref = None
    for due, amount in amounts_by_due.items():
        [new] = add_invoices(engine, due=due, amounts=[amount], customer_ref=ref, **kwargs)
        with Session(engine) as session:
            invoice = session.get(Invoice, new)
            assert invoice is not None
            ref = ref or _ref(session, invoice)
        ids.append(new)
    return ids


def _ref(session: Session, invoice: Invoice) -> str:
    from ledger.models import Customer

    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    return customer.ref


def numbers(engine, ids: list[int]) -> list[str]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return [inv.number for i in ids if (inv := session.get(Invoice, i)) is not None]


def combined_letters(engine, ids: list[int]) -> list[Letter]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        letter_ids = set(session.exec(select(LetterInvoice.letter_id).where(
            col(LetterInvoice.invoice_id).in_(ids))))
        return [letter for i in sorted(letter_ids) if (letter := session.get(Letter, i))]


async def test_cycle_three_invoices_same_day_one_notice(env, engine, database_url, executor):
    """Through the real workflows on the time-skipping server, with a worker crash
    before every first provider answer."""
    # Letters are dated by the worker's clock: the invoices are overdue by then.
    today = datetime.now(UTC).date()
    settings = settings_for(database_url, rates_file=str(TEST_RATES))
    provider = RecordingProvider(fail_first=RuntimeError)
    providers = {"email": provider, "sms": provider, "letter": provider}
    amounts = [250000, 120000, 30050]
    three = add_invoices(engine, due=today - timedelta(days=40), amounts=amounts)
    other = add_invoices(engine, due=today - timedelta(days=40), amounts=[99900])
    async with new_worker(env.client, engine, settings, executor, providers) as worker:
        handles = await start(env.client, engine, settings, worker, three + other)
        assert [(await h.result()).status for h in handles] == ["escalated"] * 4

    [letter] = combined_letters(engine, three)
    expected = [b2b_claim(number=str(a), invoice_date=today - timedelta(days=40),
                          due_date=today - timedelta(days=40), amount_cents=a, receipts=[],
                          as_of=letter.letter_date, rates=RateTable.load(TEST_RATES))
                for a in amounts]
    assert all(c.interest_cents > 0 and c.indemnity_cents == 4000 for c in expected)
    grand_total = sum(c.total_cents for c in expected)
    assert letter.principal_cents + letter.interest_cents + letter.indemnity_cents == grand_total
    text = pdf_text(letter.pdf)
    for number, claim in zip(numbers(engine, three), expected, strict=True):
        # number ... still due, days late, interest, (rate), indemnity, invoice total
        assert f"{number} " in text and f"{_fr(claim.principal_cents)} 40 " in text
        assert (f"{_fr(claim.interest_cents)} 12,00 % 40,00 EUR {_fr(claim.total_cents)}"
                in text), number
    assert f"la somme totale de {_fr(grand_total)}" in text
    [other_number] = numbers(engine, other)
    assert other_number not in text

    ids = ",".join(map(str, sorted(three)))
    posts = [m for m in provider.accepted if m.channel == "letter"
             and set(m.metadata.get("invoice_ids", "").split(",")) & set(ids.split(","))]
    emails = [m for m in provider.accepted if m.channel == "email" and m.attachments
              and m.metadata.get("invoice_ids") == ids]
    assert [m.metadata["invoice_ids"] for m in posts] == [ids]  # one registered post
    assert [[a.content for a in m.attachments] for m in emails] == [[letter.pdf]]
    assert provider.calls[letter.batch_id or 0] == 2  # crashed once, sent once
    with Session(engine) as session:
        queue = postal_queue(session)
        trail = session.exec(select(AuditEvent).where(
            col(AuditEvent.invoice_id).in_(three), AuditEvent.kind == "letter_combined")).all()
    covering = [q for q in queue if set(q.invoice_numbers) & set(numbers(engine, three))]
    assert [q.letter.id for q in covering] == [letter.id]
    assert [q.invoice_numbers for q in queue if q.letter.invoice_id == other[0]] == [
        [other_number]]
    assert sorted(e.invoice_id for e in trail) == sorted(three)


def _fr(cents: int) -> str:
    from activities.rendering import format_money

    return format_money(cents, "EUR", "fr").replace("\u202f", " ").replace("\xa0", " ")


def test_three_invoices_one_letter_one_post_one_email(engine):
    # By hand, ECB + 10 points: 13.15 % in 2025-H1, 12.15 % in 2025-H2, to 15 July.
    three = customer_invoices(engine, {date(2025, 5, 31): 450000,   # 30 d + 15 d: 48.64 + 22.47
                                       date(2025, 6, 30): 100000,   # 15 d at 12.15 %: 4.99
                                       date(2025, 4, 30): 250000})  # 61 d + 15 d: 54.94 + 12.48
    [other] = add_invoices(engine, due=date(2025, 5, 31), amounts=[70000])
    post, email = RecordingProvider("post"), RecordingProvider("mail")
    activities = activities_with(engine, post, email)

    results = send_step(activities, [*three, other], "letter")
    assert {r.status for r in results} == {"sent"}
    [letter] = combined_letters(engine, three)
    assert (letter.invoice_id, letter.letter_date, letter.deadline) == (
        None, AS_OF, date(2025, 7, 23))
    assert (letter.principal_cents, letter.interest_cents, letter.indemnity_cents) == (
        800000, 7111 + 499 + 6742, 3 * 4000)
    # One registered-post send for the customer, carrying the one letter.
    mine = [m for m in post.accepted if m.outbox_id == letter.batch_id]
    assert [[a.content for a in m.attachments] for m in mine] == [[letter.pdf]]
    assert len(post.accepted) == 2  # and the other customer's own letter

    a, b, c = numbers(engine, three)
    [d] = numbers(engine, [other])
    text = pdf_text(letter.pdf)
    for mention in [
        "Atelier Dupont SAS", "SIREN 123 456 789", "3 rue du Client, 69001 Lyon",
        "Lettre recommandée avec accusé de réception", "mise en demeure de payer",
        f"facture {a}, facture {b}, facture {c}",
        # number, date, due date, still due, days late, interest and rates, indemnity, total
        f"{a} 31 mai 2025 31 mai 2025 4 500,00 EUR 45 71,11 EUR 13,15 % puis 12,15 % "
        "40,00 EUR 4 611,11 EUR",
        f"{b} 30 juin 2025 30 juin 2025 1 000,00 EUR 15 4,99 EUR 12,15 % 40,00 EUR "
        "1 044,99 EUR",
        f"{c} 30 avril 2025 30 avril 2025 2 500,00 EUR 76 67,42 EUR 13,15 % puis 12,15 % "
        "40,00 EUR 2 607,42 EUR",
        "Total (3 factures) 8 000,00 EUR 143,52 EUR 120,00 EUR 8 263,52 EUR",
        "principal restant dû 8 000,00 EUR + intérêts de retard 143,52 EUR + indemnités "
        "forfaitaires 120,00 EUR = 8 263,52 EUR",
        f"facture {c} : du 1 mai 2025 au 30 juin 2025 (61 jours) au taux de 13,15 %",
        "L441-10", "D441-5", "1343-1", "la somme totale de 8 263,52 EUR au plus tard le "
        "23 juillet 2025", "IBAN FR76 3000 6000 0112 3456 7890 189", "injonction de payer",
        "Paris, le 15 juillet 2025", "Marie Dupont, directrice financière", "Signature",
    ]:
        assert mention in text, mention
    assert d not in text and "700,00" not in text  # another customer's invoice never

    with Session(engine) as session:
        links = session.exec(select(LetterInvoice).where(
            LetterInvoice.letter_id == letter.id).order_by(col(LetterInvoice.invoice_id))).all()
        own = session.exec(select(Letter).where(col(Letter.invoice_id).in_([*three, other]))
                           .order_by(col(Letter.invoice_id))).all()
        trail = session.exec(select(AuditEvent).where(
            col(AuditEvent.invoice_id).in_(three), AuditEvent.kind == "letter_combined")).all()
        queue = [(q.letter.id, q.invoice_numbers) for q in postal_queue(session)]
    assert [(k.invoice_id, k.interest_cents, k.indemnity_cents) for k in links] == [
        (three[0], 7111, 4000), (three[1], 499, 4000), (three[2], 6742, 4000)]
    # The invoices' own letters never reach the post; the other customer's does.
    assert [x.postal_status for x in own] == ["superseded"] * 3 + ["queued"]
    assert (letter.id, [a, b, c]) in queue and (own[3].id, [d]) in queue
    assert not {x.id for x in own[:3]} & {q[0] for q in queue}
    assert sorted(e.invoice_id for e in trail) == sorted(three)
    assert {e.detail["letter_id"] for e in trail} == {letter.id}
    # The manager's timeline of each invoice names the letter and every invoice in it.
    from api.timeline import audit_entry

    summary = audit_entry(next(e for e in trail if e.invoice_id == three[2])).summary
    assert f"letter {letter.id}" in summary and f"{a}, {b}, {c}" in summary
    assert "2500.00 + interest 67.42 + indemnity 40.00" in summary

    # The email of the step: one message for the three, one attachment, the letter's total.
    assert {r.status for r in send_step(activities, [*three, other], "email")} == {"sent"}
    [mail] = [m for m in email.accepted
              if m.metadata["invoice_ids"] == ",".join(map(str, sorted(three)))]
    [other_mail] = [m for m in email.accepted if m.metadata["invoice_ids"] == str(other)]
    assert [att.content for att in mail.attachments] == [letter.pdf]
    assert [att.content for att in other_mail.attachments] == [own[3].pdf]
    body = mail.body.replace("\u202f", " ").replace("\xa0", " ")
    for line in ["Nous vous mettons en demeure de régler la somme de 8 263,52 EUR au plus tard "
                 "le 23 juillet 2025", "Intérêts de retard au 15 juillet 2025 : 143,52 EUR",
                 "Indemnités forfaitaires pour frais de recouvrement : 120,00 EUR",
                 "Total à régler au plus tard le 23 juillet 2025 : 8 263,52 EUR", a, b, c]:
        assert line in body, line
    assert d not in body
    # A retried dispatch sends nothing again and stores no second letter.
    with Session(engine) as session:
        batch = session.get(MessageBatch, letter.batch_id)
        assert batch is not None and batch.status == "sent"
    assert activities.dispatch_message(DispatchMessageInput(results[1].outbox_id)).status == "sent"
    assert len(combined_letters(engine, three)) == 1 and len(post.accepted) == 2


def test_english_letter_and_email(engine):
    two = customer_invoices(engine, {date(2025, 5, 31): 450000, date(2025, 6, 30): 100000},
                            language="en")
    post, email = RecordingProvider("post"), RecordingProvider("mail")
    activities = activities_with(engine, post, email)
    send_step(activities, two, "letter")
    [letter] = combined_letters(engine, two)
    a, b = numbers(engine, two)
    text = pdf_text(letter.pdf)
    for mention in [
        "Registered letter with acknowledgement of receipt", "formal notice to pay",
        "mise en demeure de payer", f"invoice {a}, invoice {b}",
        f"{a} 31 May 2025 31 May 2025 4,500.00 EUR 45 71.11 EUR 13.15% then 12.15% "
        "40.00 EUR 4,611.11 EUR",
        f"{b} 30 June 2025 30 June 2025 1,000.00 EUR 15 4.99 EUR 12.15% 40.00 EUR "
        "1,044.99 EUR",
        "Total (2 invoices) 5,500.00 EUR 76.10 EUR 80.00 EUR 5,656.10 EUR",
        "the total sum of 5,656.10 EUR by 23 July 2025", "D441-5", "injonction de payer",
        "Paris, 15 July 2025",
    ]:
        assert mention in text, mention
    send_step(activities, two, "email")
    [mail] = email.accepted
    assert [att.content for att in mail.attachments] == [letter.pdf]
    assert "Total to pay by 23 July 2025: 5,656.10 EUR" in mail.body


def test_consumer_letter_has_no_indemnity(engine):
    two = customer_invoices(engine, {date(2025, 5, 31): 450000, date(2025, 6, 30): 100000},
                            segment="b2c")
    email = RecordingProvider()
    activities = activities_with(engine, OutboxProvider("post-queue"), email)
    send_step(activities, two, "letter", b2b=False)
    send_step(activities, two, "email", b2b=False)
    [mail] = email.accepted
    body = mail.body.replace("\u202f", " ").replace("\xa0", " ")
    assert "Total à régler au plus tard le 30 juillet 2025 : 5 500,00 EUR" in body
    assert "Indemnités" not in body and "40 EUR" not in body
    [letter] = combined_letters(engine, two)
    assert (letter.principal_cents, letter.interest_cents, letter.indemnity_cents) == (
        550000, 0, 0)
    assert letter.deadline == date(2025, 7, 30)  # the B2C policy's 15 days, carried
    text = pdf_text(letter.pdf)
    assert "5 500,00 EUR" in text and "au plus tard le 30 juillet 2025" in text
    assert "taux de l'intérêt légal (2,76 % pour le semestre en cours)" in text
    assert "40,00 EUR" not in text and "D441-5" not in text


def test_crash_before_the_provider_answers_gives_one_letter(engine):
    three = customer_invoices(engine, {date(2025, 5, 31): 100000, date(2025, 6, 10): 200000,
                                       date(2025, 6, 20): 300000})
    post = RecordingProvider("post", fail_first=RuntimeError)
    activities = activities_with(engine, post, RecordingProvider())
    queued = [activities.enqueue_message(notice(i, "letter")) for i in three]
    with pytest.raises(RuntimeError):
        activities.dispatch_message(DispatchMessageInput(queued[0].outbox_id))
    [stored] = combined_letters(engine, three)  # stored with the batch, before sending
    # The retries (the same request, then another member's) send the stored letter.
    assert activities.dispatch_message(DispatchMessageInput(queued[0].outbox_id)).status == "sent"
    assert activities.dispatch_message(DispatchMessageInput(queued[2].outbox_id)).status == "sent"
    [letter] = combined_letters(engine, three)
    assert letter.id == stored.id and letter.pdf == stored.pdf
    [sent] = post.accepted
    assert [a.content for a in sent.attachments] == [letter.pdf]
    with Session(engine) as session:
        assert [q.letter.id for q in postal_queue(session)].count(letter.id) == 1


def test_crash_while_composing_leaves_nothing_half_done(engine, monkeypatch):
    two = customer_invoices(engine, {date(2025, 5, 31): 100000, date(2025, 6, 10): 200000})
    post = RecordingProvider("post")
    activities = activities_with(engine, post, RecordingProvider())
    queued = [activities.enqueue_message(notice(i, "letter")) for i in two]
    compose = activities.letters.compose

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(activities.letters, "compose", compose)
        raise RuntimeError("worker died while printing")

    monkeypatch.setattr(activities.letters, "compose", crash)
    with pytest.raises(RuntimeError):
        activities.dispatch_message(DispatchMessageInput(queued[1].outbox_id))
    assert combined_letters(engine, two) == [] and _batches(engine, two[0]) == []
    assert activities.dispatch_message(DispatchMessageInput(queued[1].outbox_id)).status == "sent"
    assert len(combined_letters(engine, two)) == 1 and len(post.accepted) == 1


def test_missing_rate_is_retried_not_guessed(engine):
    two = customer_invoices(engine, {date(2026, 6, 30): 365000, date(2026, 7, 5): 100000})
    post = RecordingProvider("post")
    published_only = activities_with(engine, post, RecordingProvider(),
                                     rates=RateTable.load())
    with_rate = activities_with(engine, post, RecordingProvider(),
                                rates=RateTable.load(TEST_RATES))
    queued = [with_rate.enqueue_message(notice(i, "letter", date(2026, 7, 20))) for i in two]
    with pytest.raises(ApplicationError, match="no ecb_mro rate for 2026-H2") as err:
        published_only.dispatch_message(DispatchMessageInput(queued[0].outbox_id))
    assert err.value.type == "MissingRateError" and not err.value.non_retryable
    assert combined_letters(engine, two) == [] and post.accepted == []
    assert _batches(engine, two[0]) == []  # nothing claimed: the retry starts over
    assert with_rate.dispatch_message(DispatchMessageInput(queued[0].outbox_id)).status == "sent"
    [letter] = combined_letters(engine, two)
    # 3650.00 * 12 % * 20 / 365 = 24.00 and 1000.00 * 12 % * 15 / 365 = 4.93
    assert letter.interest_cents == 2400 + 493


def _batches(engine, invoice_id: int) -> list[MessageBatch]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        return list(session.exec(select(MessageBatch).where(
            MessageBatch.customer_id == invoice.customer_id)))


def test_letters_and_preview_commands_show_the_combined_letter(engine, database_url,
                                                                monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import cli
    from settings import get_settings

    three = customer_invoices(engine, {date(2025, 5, 31): 450000, date(2025, 6, 30): 100000,
                                       date(2025, 4, 30): 250000})
    send_step(activities_with(engine, OutboxProvider("post-queue"), RecordingProvider()),
              three, "letter")
    [letter] = combined_letters(engine, three)
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    monkeypatch.delenv("RELANCE_RATES_FILE", raising=False)  # the published rates
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(cli.app, ["preview", str(three[1]), "mise_en_demeure", "--customer",
                                      "--as-of", "2025-07-15", "--pdf", str(tmp_path / "c.pdf")],
                            env={"COLUMNS": "200"})
        assert out.exit_code == 0, out.output
        assert "3 open invoices" in out.output and "8263.52" in out.output
        assert pdf_text((tmp_path / "c.pdf").read_bytes()).count("40,00 EUR") >= 3
        out = runner.invoke(cli.app, ["preview", str(three[1]), "reminder", "--customer"])
        assert out.exit_code == 2 and "has no letter" in out.output

        out = runner.invoke(cli.app, ["letters", "--export", str(tmp_path), "--mark-posted"],
                            env={"COLUMNS": "250"})
        assert out.exit_code == 0, out.output
        assert ", ".join(numbers(engine, three)) in out.output and "8263.52" in out.output
        [exported] = tmp_path.glob(f"{letter.id:06d}-mise-en-demeure-*-2025-07-15.pdf")
        assert exported.read_bytes() == letter.pdf
        with Session(engine) as session:
            own = session.exec(select(Letter).where(col(Letter.invoice_id).in_(three))).all()
            posted = session.get(Letter, letter.id)
        assert posted is not None and posted.postal_status == "posted"
        assert {x.postal_status for x in own} == {"superseded"}  # never exported
        assert not list(tmp_path.glob(f"*-mise-en-demeure-{numbers(engine, three)[0]}-*"))
    finally:
        get_settings.cache_clear()
