"""Late-payment interest and the 40 EUR recovery indemnity, French law.

B2B (art. L441-10 II Code de commerce): the default rate is the ECB main
refinancing operations (MRO) rate + 10 points, fixed per half-year: the MRO in
force on 1 January for January-June, on 1 July for July-December. Interest runs
from the day after the due date, with no reminder needed, plus a 40 EUR
indemnité forfaitaire pour frais de recouvrement per late invoice (D441-5), due
in full even after a partial payment.

B2C (art. 1231-6 and 1344-1 Code civil): only the taux de l'intérêt légal (the
"all other cases" rate when the creditor is a company), from the receipt of the
mise en demeure; never the 40 EUR (L111-8 CPCE).

Both: simple interest, exact calendar days over 365, one segment per half-year at
that half-year's rate, no compounding (art. 1343-2). Money is integer cents,
rates are Decimal percent, every segment is rounded half-up to the cent.

Partial payments (art. 1343-1 Code civil): a payment is applied to the interest
accrued on the day it is received first, then to the principal. Interest is
counted through the day a payment is received; the reduced principal bears
interest from the next day.

Rates are data: `rules/data/rates.csv` (series, half-year, rate, source, date
compiled), extended by an administrator's override file without a release. A
half-year that is in neither is never guessed: `MissingRateError` names it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

RATES_FILE = Path(__file__).resolve().parent / "data" / "rates.csv"
B2B_MARGIN_POINTS = Decimal("10")
RECOVERY_INDEMNITY_CENTS = 4000
DAYS_PER_YEAR = 365


class Series(StrEnum):
    ECB_MRO = "ecb_mro"
    # Taux de l'intérêt légal: creditor not a private individual ("all other cases").
    LEGAL_OTHER = "legal_other"
    LEGAL_INDIVIDUAL = "legal_individual"


class MissingRateError(LookupError):
    """A half-year whose rate is not in the table: add it (with its source) to the
    override file named by RELANCE_RATES_FILE."""


class RatesFileError(ValueError):
    """A rates file with a malformed line."""


class HalfYear(NamedTuple):
    year: int
    half: int  # 1: January-June, 2: July-December

    @classmethod
    def of(cls, day: date) -> HalfYear:
        return cls(day.year, 1 if day.month <= 6 else 2)

    @classmethod
    def parse(cls, label: str) -> HalfYear:
        year, _, half = label.strip().upper().partition("-H")
        if not (year.isdigit() and half in ("1", "2")):
            raise ValueError(f"half-year {label!r} is not like 2026-H1")
        return cls(int(year), int(half))

    @property
    def first_day(self) -> date:
        return date(self.year, 1 if self.half == 1 else 7, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, 6, 30) if self.half == 1 else date(self.year, 12, 31)

    def __str__(self) -> str:
        return f"{self.year}-H{self.half}"


@dataclass(frozen=True)
class Rate:
    series: Series
    half_year: HalfYear
    percent: Decimal
    source: str = ""
    compiled_on: str = ""


@dataclass(frozen=True)
class RateTable:
    rates: dict[tuple[Series, HalfYear], Rate] = field(default_factory=dict)

    @classmethod
    def load(cls, *paths: Path | str) -> RateTable:
        """The packaged table, then each override file in order (later lines win)."""
        rates: dict[tuple[Series, HalfYear], Rate] = {}
        for path in (RATES_FILE, *(Path(p) for p in paths if p)):
            for rate in _read_rates(Path(path)):
                rates[(rate.series, rate.half_year)] = rate
        return cls(rates)

    def lookup(self, series: Series, half_year: HalfYear) -> Rate:
        try:
            return self.rates[(series, half_year)]
        except KeyError:
            raise MissingRateError(
                f"no {series} rate for {half_year}: add it with its source to the rates "
                f"override file (RELANCE_RATES_FILE)") from None

    def b2b_percent(self, half_year: HalfYear) -> Decimal:
        """ECB MRO on the half-year's reference date + 10 points."""
        return self.lookup(Series.ECB_MRO, half_year).percent + B2B_MARGIN_POINTS

    def legal_percent(self, half_year: HalfYear, creditor_individual: bool = False) -> Decimal:
        series = Series.LEGAL_INDIVIDUAL if creditor_individual else Series.LEGAL_OTHER
        return self.lookup(series, half_year).percent


def _read_rates(path: Path) -> list[Rate]:
    rates = []
    with path.open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                rates.append(Rate(Series(row["series"].strip()),
                                  HalfYear.parse(row["half_year"]),
                                  Decimal(row["rate_percent"].strip()),
                                  (row.get("source") or "").strip(),
                                  (row.get("compiled_on") or "").strip()))
            except (KeyError, ValueError, ArithmeticError, AttributeError) as err:
                raise RatesFileError(f"{path}:{n}: {err}") from None
            if not rates[-1].source:
                raise RatesFileError(f"{path}:{n}: every rate needs its source")
    return rates


# --- interest -------------------------------------------------------------------


def round_cents(amount: Decimal) -> int:
    return int(amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class InterestSegment:
    """Interest on one principal over days of one half-year (both ends included)."""

    first_day: date
    last_day: date
    principal_cents: int
    rate_percent: Decimal
    half_year: str

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def interest_cents(self) -> int:
        return round_cents(Decimal(self.principal_cents) * self.rate_percent / 100
                           * self.days / DAYS_PER_YEAR)


RateFor = Callable[[HalfYear], Decimal]


def accrue(principal_cents: int, first_day: date, last_day: date,
           rate_for: RateFor) -> list[InterestSegment]:
    """Simple interest on a fixed principal from `first_day` to `last_day` included,
    one segment per half-year at that half-year's rate."""
    if principal_cents < 0:
        raise ValueError(f"principal must not be negative, got {principal_cents}")
    segments = []
    day = first_day
    while day <= last_day and principal_cents > 0:
        half = HalfYear.of(day)
        end = min(last_day, half.last_day)
        segments.append(InterestSegment(day, end, principal_cents, rate_for(half), str(half)))
        day = end + timedelta(days=1)
    return segments


@dataclass(frozen=True)
class Receipt:
    """Money received for an invoice, on a day."""

    day: date
    amount_cents: int


@dataclass(frozen=True)
class InvoiceClaim:
    """What one invoice owes on `as_of`: the lines of a mise en demeure."""

    number: str
    invoice_date: date
    due_date: date
    amount_cents: int
    paid_cents: int
    principal_cents: int
    interest_cents: int
    indemnity_cents: int
    segments: tuple[InterestSegment, ...] = ()
    # Part of the payments applied to interest (art. 1343-1).
    interest_paid_cents: int = 0
    overpaid_cents: int = 0

    @property
    def total_cents(self) -> int:
        return self.principal_cents + self.interest_cents + self.indemnity_cents


def invoice_claim(*, number: str, invoice_date: date, due_date: date, amount_cents: int,
                  receipts: Iterable[Receipt], as_of: date, rate_for: RateFor | None,
                  interest_from: date | None, recovery_indemnity: bool) -> InvoiceClaim:
    """Principal, interest and indemnity still due on `as_of`.

    `interest_from` is the first day that bears interest (B2B: the day after the due
    date; B2C: the day after the mise en demeure is received; None: no interest yet).
    Receipts are applied to accrued interest first, then to principal (art. 1343-1).
    """
    if amount_cents < 0:
        raise ValueError(f"invoice {number}: amount must not be negative")
    principal, accrued, interest_paid, overpaid = amount_cents, 0, 0, 0
    segments: list[InterestSegment] = []
    cursor = interest_from
    ordered = sorted(receipts, key=lambda r: r.day)
    for receipt in ordered:
        if receipt.amount_cents <= 0:
            raise ValueError(f"invoice {number}: receipt of {receipt.amount_cents} cents")
        if receipt.day > as_of:
            continue
        if cursor is not None and rate_for is not None and receipt.day >= cursor:
            new = accrue(principal, cursor, receipt.day, rate_for)
            segments += new
            accrued += sum(s.interest_cents for s in new)
            cursor = receipt.day + timedelta(days=1)
        to_interest = min(receipt.amount_cents, accrued)
        accrued -= to_interest
        interest_paid += to_interest
        to_principal = min(receipt.amount_cents - to_interest, principal)
        principal -= to_principal
        overpaid += receipt.amount_cents - to_interest - to_principal
    if cursor is not None and rate_for is not None and cursor <= as_of:
        new = accrue(principal, cursor, as_of, rate_for)
        segments += new
        accrued += sum(s.interest_cents for s in new)
    late = as_of > due_date
    return InvoiceClaim(
        number=number, invoice_date=invoice_date, due_date=due_date, amount_cents=amount_cents,
        paid_cents=sum(r.amount_cents for r in ordered if r.day <= as_of),
        principal_cents=principal, interest_cents=accrued,
        indemnity_cents=RECOVERY_INDEMNITY_CENTS if recovery_indemnity and late else 0,
        segments=tuple(segments), interest_paid_cents=interest_paid, overpaid_cents=overpaid,
    )


def b2b_claim(*, number: str, invoice_date: date, due_date: date, amount_cents: int,
              receipts: Iterable[Receipt], as_of: date, rates: RateTable) -> InvoiceClaim:
    """Professional debtor: MRO + 10 points from the day after the due date, plus 40 EUR."""
    return invoice_claim(number=number, invoice_date=invoice_date, due_date=due_date,
                         amount_cents=amount_cents, receipts=receipts, as_of=as_of,
                         rate_for=rates.b2b_percent,
                         interest_from=due_date + timedelta(days=1), recovery_indemnity=True)


def b2c_claim(*, number: str, invoice_date: date, due_date: date, amount_cents: int,
              receipts: Iterable[Receipt], as_of: date, rates: RateTable,
              notice_received_on: date | None,
              creditor_individual: bool = False) -> InvoiceClaim:
    """Consumer debtor: legal rate from the receipt of the mise en demeure, no 40 EUR."""
    return invoice_claim(
        number=number, invoice_date=invoice_date, due_date=due_date, amount_cents=amount_cents,
        receipts=receipts, as_of=as_of,
        rate_for=lambda h: rates.legal_percent(h, creditor_individual),
        interest_from=notice_received_on + timedelta(days=1) if notice_received_on else None,
        recovery_indemnity=False)


@dataclass(frozen=True)
class ClaimTotals:
    principal_cents: int
    interest_cents: int
    indemnity_cents: int

    @property
    def total_cents(self) -> int:
        return self.principal_cents + self.interest_cents + self.indemnity_cents


def totals(claims: Sequence[InvoiceClaim]) -> ClaimTotals:
    return ClaimTotals(sum(c.principal_cents for c in claims),
                       sum(c.interest_cents for c in claims),
                       sum(c.indemnity_cents for c in claims))
