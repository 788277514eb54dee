"""Reading the tracking table a finance team already keeps (CSV, English or French
headers, comma or semicolon, '4 500,00' or '4500.00', ISO or dd/mm/yyyy dates).

Every row is checked before anything is written: a file with a bad row imports
nothing and the error names each bad line, so no half-imported ledger is left behind.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from ledger.crud import InvoiceRow
from ledger.models import InvoiceStatus

COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": ("customer", "client", "customer_ref", "code_client"),
    "customer_name": ("customer_name", "nom_client", "raison_sociale", "name"),
    "number": ("invoice_number", "invoice", "number", "numero_de_facture", "facture", "numero"),
    "invoice_date": ("invoice_date", "date_de_facture", "date_facture", "date"),
    "amount": ("amount", "montant", "montant_ttc"),
    "currency": ("currency", "devise"),
    "due_date": ("due_date", "echeance", "date_d_echeance", "date_echeance"),
    "status": ("status", "statut"),
    "balance": ("balance", "reste_a_payer", "solde"),
    "segment": ("segment", "type_client"),
    "email": ("email", "customer_email", "courriel"),
    "phone": ("phone", "customer_phone", "telephone", "mobile"),
    "language": ("language", "langue"),
    "country": ("country", "pays"),
    "address": ("address", "adresse"),
}
REQUIRED = ("customer", "number", "invoice_date", "amount", "due_date")
STATUSES = {
    "open": InvoiceStatus.OPEN, "ouverte": InvoiceStatus.OPEN, "a_venir": InvoiceStatus.OPEN,
    "en_retard": InvoiceStatus.OPEN, "impayee": InvoiceStatus.OPEN, "overdue": InvoiceStatus.OPEN,
    "due": InvoiceStatus.OPEN, "partiellement_payee": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID, "payee": InvoiceStatus.PAID, "reglee": InvoiceStatus.PAID,
}


class CsvImportError(ValueError):
    """Raised with every bad line listed."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _key(header: str) -> str:
    plain = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return "_".join(plain.lower().replace("'", " ").replace("-", " ").split())


def parse_amount(text: str) -> int:
    """Cents from '4 500,00', '4500.00', '4,500.00' or '4500'."""
    s = text.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    for symbol in ("€", "EUR", "eur"):
        s = s.replace(symbol, "")
    if "," in s and "." in s:
        # The last separator is the decimal one: '4,500.00' or '4.500,00'.
        if s.rfind(".") > s.rfind(","):
            s = s.replace(",", "")
        else:
            s = s.replace(".", "").replace(",", ".")
    else:
        s = s.replace(",", ".")
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number") from None
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError(f"amount {text!r} has more than 2 decimals")
    if value <= 0:
        raise ValueError(f"amount {text!r} must be positive")
    return int(value * 100)


def parse_day(text: str) -> date:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise ValueError(f"date {text!r} is not YYYY-MM-DD or DD/MM/YYYY")


def parse_csv(text: str) -> list[InvoiceRow]:
    sample = text[:4096]
    dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    headers = {_key(h): h for h in (reader.fieldnames or [])}
    columns = {field: next((headers[a] for a in aliases if a in headers), None)
               for field, aliases in COLUMNS.items()}
    missing = [f for f in REQUIRED if columns[f] is None]
    if missing:
        raise CsvImportError([f"missing column(s): {', '.join(missing)}"])
    rows: list[InvoiceRow] = []
    errors: list[str] = []
    seen: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        def get(name: str, raw: dict[str, str] = raw) -> str:
            col = columns[name]
            return (raw.get(col) or "").strip() if col else ""
        try:
            rows.append(_row(get, seen))
        except ValueError as err:
            errors.append(f"line {line}: {err}")
    if errors:
        raise CsvImportError(errors)
    return rows


def _row(get, seen: set[str]) -> InvoiceRow:  # type: ignore[no-untyped-def]
    number = get("number")
    if not number or not get("customer"):
        raise ValueError("customer and invoice number are required")
    if number in seen:
        raise ValueError(f"invoice {number} appears twice in the file")
    seen.add(number)
    invoice_date, due_date = parse_day(get("invoice_date")), parse_day(get("due_date"))
    if due_date < invoice_date:
        raise ValueError("due date is before invoice date")
    currency = (get("currency") or "EUR").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code")
    status_text = _key(get("status") or "open")
    if status_text not in STATUSES:
        raise ValueError(f"status {get('status')!r} is not one of {sorted(set(STATUSES))}")
    amount = parse_amount(get("amount"))
    balance = parse_amount(get("balance")) if get("balance") else None
    if balance is not None and balance > amount:
        raise ValueError("balance is larger than the amount")
    segment = (get("segment") or "b2b").lower()
    if segment not in ("b2b", "b2c"):
        raise ValueError(f"segment {segment!r} must be b2b or b2c")
    return InvoiceRow(
        customer_ref=get("customer"), customer_name=get("customer_name") or get("customer"),
        number=number, invoice_date=invoice_date, due_date=due_date, amount_cents=amount,
        currency=currency, status=STATUSES[status_text], balance_cents=balance, segment=segment,
        email=get("email") or None, phone=get("phone") or None,
        language=(get("language") or "fr").lower(), country=(get("country") or "FR").upper(),
        address=get("address") or None,
    )
