"""Every message and letter is a Jinja2 template: `templates/<lang>/<template>.<channel>.j2`,
with `subject` and `body` blocks. A company directory, when configured, is searched
first so a finance team can reword any message without touching the code.

The environment is sandboxed with strict undefined. HTML templates
(`*.html.j2`, the mise en demeure letter) are autoescaped; the HTML part of an
email is derived from its text by escaping it, so the wording has one source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateNotFound, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

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


def format_percent(rate: Decimal, language: str) -> str:
    """'12,15 %' / '12.15%'."""
    amount = format_decimal(rate, format="0.00", locale=LOCALES[language])
    return f"{amount}\u00a0%" if language == "fr" else f"{amount}%"


_URL = re.compile(r"https?://[^\s<>\"']+")


def text_to_html(text: str, language: str) -> str:
    """The HTML part of an email: the text escaped, paragraphs kept, links clickable."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        escaped = str(escape(block))
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    lang = language if language in LANGUAGES else "fr"
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"></head>'
            '<body style="font-family: Arial, sans-serif; font-size: 14px; color: #222;">\n'
            + "\n".join(paragraphs) + "\n</body></html>\n")


@dataclass
class RenderedMessage:
    subject: str | None
    body: str
    html: str | None = None


class MessageRenderer:
    def __init__(self, company_dir: Path | None = None) -> None:
        search = [str(company_dir)] if company_dir else []
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader([*search, str(TEMPLATES_DIR)]),
            autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def has_template(self, name: str) -> bool:
        try:
            self.env.get_template(name)
        except TemplateNotFound:
            return False
        return True

    @staticmethod
    def language(language: str) -> str:
        return language if language in LANGUAGES else "fr"

    def _helpers(self, lang: str, context: dict[str, Any]) -> dict[str, Any]:
        currency = context.get("currency", "EUR")

        def money(cents: int, code: str = currency) -> str:
            return format_money(cents, code, lang)

        return {"money": money, "day": lambda d: format_day(d, lang),
                "percent": lambda r: format_percent(Decimal(r), lang)}

    def render_html(self, template: str, channel: str, language: str,
                    context: dict[str, Any]) -> str:
        """A whole autoescaped HTML document: `<lang>/<template>.<channel>.html.j2`."""
        lang = self.language(language)
        tpl: Template = self.env.get_template(f"{lang}/{template}.{channel}.html.j2")
        return tpl.render({**context, **self._helpers(lang, context)})

    def render(self, template: str, channel: str, language: str,
               context: dict[str, Any]) -> RenderedMessage:
        lang = self.language(language)
        tpl = self.env.get_template(f"{lang}/{template}.{channel}.j2")
        ctx = tpl.new_context({**context, **self._helpers(lang, context)})
        # Rendering the whole template once registers the parents' blocks of an
        # `{% extends %}` chain in ctx.blocks, the most derived first.
        "".join(tpl.root_render_func(ctx))
        subject = ("".join(ctx.blocks["subject"][0](ctx)).strip()
                   if "subject" in ctx.blocks else None)
        body = "".join(ctx.blocks["body"][0](ctx)).strip() + "\n"
        html = text_to_html(body, lang) if channel == "email" else None
        return RenderedMessage(subject=subject, body=body, html=html)
