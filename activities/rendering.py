"""Every message and letter is a Jinja2 template: `templates/<lang>/<template>.<channel>.j2`,
with `subject` and `body` blocks. A company directory, when configured, is searched
first so a finance team can reword any message without touching the code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
LANGUAGES = ("fr", "en")
LOCALES = {"fr": "fr_FR", "en": "en_GB"}


def format_money(cents: int, currency: str, language: str) -> str:
    """'4 500,00 EUR' in French, '4,500.00 EUR' in English."""
    amount = format_decimal(Decimal(cents) / 100, format="#,##0.00", locale=LOCALES[language])
    return f"{amount} {currency}"


def format_day(day: date, language: str) -> str:
    """'22 novembre 2026' / '22 November 2026'."""
    return format_date(day, format="long", locale=LOCALES[language])


@dataclass
class RenderedMessage:
    subject: str | None
    body: str


class MessageRenderer:
    def __init__(self, company_dir: Path | None = None) -> None:
        search = [str(company_dir)] if company_dir else []
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader([*search, str(TEMPLATES_DIR)]),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, template: str, channel: str, language: str,
               context: dict[str, Any]) -> RenderedMessage:
        lang = language if language in LANGUAGES else "fr"
        tpl = self.env.get_template(f"{lang}/{template}.{channel}.j2")
        currency = context.get("currency", "EUR")

        def money(cents: int, code: str = currency) -> str:
            return format_money(cents, code, lang)

        ctx = tpl.new_context({**context, "money": money,
                               "day": lambda d: format_day(d, lang)})
        # Rendering the whole template once registers the parents' blocks of an
        # `{% extends %}` chain in ctx.blocks, the most derived first.
        "".join(tpl.root_render_func(ctx))
        subject = ("".join(ctx.blocks["subject"][0](ctx)).strip()
                   if "subject" in ctx.blocks else None)
        body = "".join(ctx.blocks["body"][0](ctx)).strip() + "\n"
        return RenderedMessage(subject=subject, body=body)
