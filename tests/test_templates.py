"""Every template in both languages, rendered with one fixed invoice and compared
with its checked-in sample (tests/samples/); `RELANCE_UPDATE_SAMPLES=1` rewrites
them for review. Plus the preview command."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from activities.rendering import TEMPLATES_DIR, MessageRenderer, text_to_html
from settings import get_settings
from tests.factories import add_invoices

SAMPLES = Path(__file__).parent / "samples"
TEMPLATES = sorted({(p.parent.name, p.name.removesuffix(".j2"))
                    for p in TEMPLATES_DIR.glob("*/*.j2")
                    if not p.name.startswith("_") and not p.name.endswith(".html.j2")})

CONTEXT = {
    "customer": {"name": "Boulangerie Martin SARL", "ref": "C-0042",
                 "address": "8 place du Marché, 69002 Lyon"},
    "invoice": {"number": "F-2026-0917", "invoice_date": date(2026, 10, 23),
                "due_date": date(2026, 11, 22), "amount_cents": 500000},
    "currency": "EUR", "balance_cents": 450000, "paid_cents": 50000, "days_overdue": 30,
    "today": date(2026, 12, 22), "deadline": date(2026, 12, 30), "recovery_indemnity": True,
    "creditor": {"name": "Atelier Dupont SAS", "address": "12 rue des Lilas, 75011 Paris",
                 "email": "compta@dupont.example", "phone": "+33 1 23 45 67 89",
                 "iban": "FR76 3000 6000 0112 3456 7890 189", "city": "Paris",
                 "signatory": "Marie Dupont", "legal_id": "SIREN 123 456 789"},
    "pay_url": "https://pay.dupont.example/F-2026-0917",
    "claim": {"professional": True, "as_of": date(2026, 12, 22), "legal_rate": None,
              "principal_cents": 450000, "interest_cents": 4500, "indemnity_cents": 4000,
              "total_cents": 458500, "invoices": []},
}
# One message for several invoices of a customer (issue: one conversation per customer).
GROUPED = {
    **CONTEXT, "tone": 3, "total_cents": 512000, "notice": None,
    "invoices": [
        {"number": "F-2026-0917", "invoice_date": date(2026, 10, 23),
         "due_date": date(2026, 11, 22), "balance_cents": 450000, "currency": "EUR",
         "step": "last_reminder", "days_overdue": 30},
        {"number": "F-2026-0988", "invoice_date": date(2026, 11, 2),
         "due_date": date(2026, 12, 2), "balance_cents": 62000, "currency": "EUR",
         "step": "reminder", "days_overdue": 20},
    ],
}
MONEY = {"fr": "4 500,00 EUR", "en": "4,500.00 EUR"}
DUE = {"fr": "22 novembre 2026", "en": "22 November 2026"}


def plain(text: str) -> str:
    return text.replace("\u202f", " ").replace("\xa0", " ")


@pytest.mark.parametrize(("lang", "name"), TEMPLATES, ids=[f"{a}/{b}" for a, b in TEMPLATES])
def test_sample_rendering(lang, name):
    template, channel = name.rsplit(".", 1)
    context = GROUPED if template == "grouped" else CONTEXT
    rendered = MessageRenderer().render(template, channel, lang, context)
    text = plain(f"{rendered.subject or ''}\n---\n{rendered.body}")
    # Names the invoice, the amount still due, the due date, how to pay, whom to contact.
    assert "F-2026-0917" in text and MONEY[lang] in text and DUE[lang] in text
    assert "FR76 3000" in text or "https://pay.dupont.example/F-2026-0917" in text
    assert "+33 1 23 45 67 89" in text or "compta@dupont.example" in text
    assert "{{" not in text and "{%" not in text
    sample = SAMPLES / lang / f"{name}.txt"
    if os.environ.get("RELANCE_UPDATE_SAMPLES"):
        sample.parent.mkdir(parents=True, exist_ok=True)
        sample.write_text(text, encoding="utf-8")
    assert text == sample.read_text(encoding="utf-8"), f"{sample} differs: review and update"


def test_every_step_has_both_languages():
    assert {n for lang, n in TEMPLATES if lang == "fr"} == {n for lang, n in TEMPLATES
                                                             if lang == "en"}


def test_html_part_is_escaped():
    html = text_to_html("Bonjour <script>alert(1)</script> & co\nhttps://pay.example/F?a=1&b=2",
                        "fr")
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; co" in html
    assert '<a href="https://pay.example/F?a=1&amp;b=2">' in html


def test_sms_stays_short():
    for lang in ("fr", "en"):
        body = MessageRenderer().render("sms_reminder", "sms", lang, CONTEXT).body
        assert len(body) <= 320 and re.search(r"STOP", body)


def test_preview_command_renders_without_sending(engine, database_url, monkeypatch, tmp_path):
    import cli
    from tests.factories import messages

    [invoice_id] = add_invoices(engine, due=date(2025, 5, 31), invoice_date=date(2025, 5, 1),
                                amounts=[450000])
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    monkeypatch.delenv("RELANCE_RATES_FILE", raising=False)  # the packaged, published rates
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(cli.app, ["preview", str(invoice_id), "reminder"])
        assert out.exit_code == 0, out.output
        assert "4 500,00 EUR" in plain(out.output) and "31 mai 2025" in out.output
        pdf = tmp_path / "letter.pdf"
        out = runner.invoke(cli.app, ["preview", str(invoice_id), "mise_en_demeure",
                                      "--channel", "email", "--as-of", "2025-06-30",
                                      "--pdf", str(pdf)])
        assert out.exit_code == 0, out.output
        assert "4 588,64 EUR" in plain(out.output) and pdf.read_bytes().startswith(b"%PDF")
        out = runner.invoke(cli.app, ["preview", str(invoice_id), "call"])
        assert out.exit_code == 2 and "nothing to render" in out.output
        out = runner.invoke(cli.app, ["preview", str(invoice_id), "mise_en_demeure",
                                      "--as-of", "2026-07-20"])
        assert out.exit_code == 1 and "2026-H2" in out.output
    finally:
        get_settings.cache_clear()
    assert messages(engine, invoice_id) == []


def test_letters_command_exports_the_post_queue(engine, database_url, monkeypatch, tmp_path):
    import cli
    from activities.notify import Creditor, NotifyActivities
    from activities.payloads import SendMessageInput
    from activities.providers.outbox import OutboxProvider

    [invoice_id] = add_invoices(engine, due=date(2025, 5, 31), amounts=[450000])
    NotifyActivities(engine, {"letter": OutboxProvider("post-queue")}, MessageRenderer(),
                     Creditor(name="Dupont")).send_message(SendMessageInput(
                         invoice_id=invoice_id, step_key="mise_en_demeure", channel="letter",
                         template="mise_en_demeure", deadline_days=8, as_of=date(2025, 6, 30)))
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(cli.app, ["letters", "--export", str(tmp_path), "--mark-posted"],
                            env={"COLUMNS": "200"})
        assert out.exit_code == 0, out.output
        from sqlmodel import Session

        from ledger.models import Invoice

        with Session(engine) as session:
            invoice = session.get(Invoice, invoice_id)
            assert invoice is not None
        [exported] = tmp_path.glob(f"*-mise-en-demeure-{invoice.number}-2025-06-30.pdf")
        assert exported.read_bytes().startswith(b"%PDF")
        again = runner.invoke(cli.app, ["letters"])
        assert "0 letters queued" in again.output
    finally:
        get_settings.cache_clear()


def test_company_directory_overrides_a_template(engine, database_url, tmp_path):
    from worker import build_notify

    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "reminder.email.j2").write_text(
        "{% block subject %}Votre facture {{ invoice.number }}{% endblock %}"
        "{% block body %}Reste dû : {{ money(balance_cents) }}{% endblock %}")
    [invoice_id] = add_invoices(engine, due=date(2025, 5, 31), amounts=[450000])
    from tests.factories import settings_for

    notify = build_notify(engine, settings_for(database_url, templates_dir=str(tmp_path)),
                          providers={})
    shown = notify.preview(invoice_id, "reminder", "email", "reminder")
    assert plain(shown["body"]) == "Reste dû : 4 500,00 EUR\n"
    # Templates the company did not override still come from templates/.
    assert "IBAN" in notify.preview(invoice_id, "pre_reminder", "email", "pre_reminder")["body"]
