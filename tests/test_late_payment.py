"""Table tests of the late-payment rules (rates from rules/data/rates.csv)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from rules.late_payment import (
    HalfYear,
    InterestSegment,
    MissingRateError,
    RatesFileError,
    RateTable,
    Receipt,
    b2b_claim,
    b2c_claim,
    totals,
)

RATES = RateTable.load()


@pytest.mark.parametrize(
    ("half", "b2b", "legal_other", "legal_individual"),
    [
        ("2019-H1", "10.00", "0.86", "3.40"),
        ("2022-H2", "10.00", "0.77", "3.15"),
        ("2023-H1", "12.50", "2.06", "4.47"),
        ("2023-H2", "14.00", "4.22", "6.82"),
        ("2024-H1", "14.50", "5.07", "8.01"),
        ("2024-H2", "14.25", "4.92", "8.16"),
        ("2025-H1", "13.15", "3.71", "7.21"),
        ("2025-H2", "12.15", "2.76", "6.65"),
        ("2026-H1", "12.15", "2.62", "6.67"),
    ],
)
def test_packaged_rates(half, b2b, legal_other, legal_individual):
    h = HalfYear.parse(half)
    assert RATES.b2b_percent(h) == Decimal(b2b)
    assert RATES.legal_percent(h) == Decimal(legal_other)
    assert RATES.legal_percent(h, creditor_individual=True) == Decimal(legal_individual)


def test_every_packaged_rate_names_its_source():
    assert RATES.rates and all(r.source and r.compiled_on == "2026-11-24"
                               for r in RATES.rates.values())


@pytest.mark.parametrize(
    ("amount", "due", "as_of", "segments", "interest"),
    [
        # 30 days of 2025-H1 at 13.15 %: 450000 * 13.15 % * 30 / 365 = 4863.70
        (450000, date(2025, 5, 31), date(2025, 6, 30), [("2025-H1", 30, "13.15")], 4864),
        # Half-year boundary: 10 days at 13.15 % (1621.23), 10 days at 12.15 % (1497.95)
        (450000, date(2025, 6, 20), date(2025, 7, 10),
         [("2025-H1", 10, "13.15"), ("2025-H2", 10, "12.15")], 3119),
        # Year boundary: 10 days at 14.00 % (383.56) then 10 days at 14.50 % (397.26)
        (100000, date(2023, 12, 21), date(2024, 1, 10),
         [("2023-H2", 10, "14.00"), ("2024-H1", 10, "14.50")], 781),
        # An ECB move inside a half-year (2024-06-12) does not change 2024-H1's rate.
        (100000, date(2024, 6, 1), date(2024, 6, 30), [("2024-H1", 29, "14.50")], 1152),
        # Interest starts the day after the due date: nothing on the due date itself.
        (100000, date(2025, 3, 10), date(2025, 3, 10), [], 0),
        (100000, date(2025, 3, 10), date(2025, 3, 11), [("2025-H1", 1, "13.15")], 36),
    ],
)
def test_b2b_interest_per_half_year(amount, due, as_of, segments, interest):
    claim = b2b_claim(number="F-1", invoice_date=due, due_date=due, amount_cents=amount,
                      receipts=[], as_of=as_of, rates=RATES)
    assert [(s.half_year, s.days, str(s.rate_percent)) for s in claim.segments] == [
        (h, d, r) for h, d, r in segments]
    assert claim.interest_cents == interest
    assert claim.principal_cents == amount
    assert claim.indemnity_cents == (4000 if as_of > due else 0)


def test_partial_payment_pays_interest_first():
    # 30 days (1 Feb - 2 Mar) on 1000.00 at 13.15 % = 10.81; the 500.00 received on
    # 2 March pays those 10.81 first and 489.19 of principal (art. 1343-1).
    claim = b2b_claim(number="F-2", invoice_date=date(2025, 1, 1), due_date=date(2025, 1, 31),
                      amount_cents=100000, receipts=[Receipt(date(2025, 3, 2), 50000)],
                      as_of=date(2025, 4, 1), rates=RATES)
    assert claim.interest_paid_cents == 1081
    assert claim.principal_cents == 51081
    # Then 30 days (3 Mar - 1 Apr) on 510.81: 5.52
    assert claim.interest_cents == 552
    assert claim.paid_cents == 50000
    # The 40 EUR stays due in full after a partial payment.
    assert claim.indemnity_cents == 4000
    assert claim.total_cents == 51081 + 552 + 4000


def test_payment_before_due_date_reduces_principal_only():
    claim = b2b_claim(number="F-3", invoice_date=date(2025, 1, 1), due_date=date(2025, 1, 31),
                      amount_cents=100000, receipts=[Receipt(date(2025, 1, 15), 40000)],
                      as_of=date(2025, 3, 2), rates=RATES)
    assert claim.principal_cents == 60000 and claim.interest_paid_cents == 0
    assert claim.interest_cents == 648  # 600.00 * 13.15 % * 30 / 365 = 6.4849


def test_overpayment_is_reported_not_lost():
    claim = b2b_claim(number="F-4", invoice_date=date(2025, 1, 1), due_date=date(2025, 1, 31),
                      amount_cents=10000, receipts=[Receipt(date(2025, 1, 31), 12000)],
                      as_of=date(2025, 2, 10), rates=RATES)
    assert (claim.principal_cents, claim.interest_cents, claim.overpaid_cents) == (0, 0, 2000)


def test_several_invoices_one_indemnity_each():
    claims = [b2b_claim(number=f"F-{n}", invoice_date=date(2025, 1, 1),
                        due_date=date(2025, 5, 31), amount_cents=amount, receipts=[],
                        as_of=date(2025, 6, 30), rates=RATES)
              for n, amount in ((1, 450000), (2, 100000))]
    t = totals(claims)
    # 4863.70 -> 4864 and 100000 * 13.15 % * 30 / 365 = 1080.82 -> 1081
    assert (t.principal_cents, t.interest_cents, t.indemnity_cents) == (550000, 5945, 8000)
    assert t.total_cents == 563945


def test_b2c_legal_rate_from_receipt_of_notice_and_no_indemnity():
    claim = b2c_claim(number="F-5", invoice_date=date(2025, 1, 1), due_date=date(2025, 1, 31),
                      amount_cents=100000, receipts=[], as_of=date(2025, 4, 9), rates=RATES,
                      notice_received_on=date(2025, 3, 10))
    # 11 March - 9 April: 30 days at 3.71 % ("all other cases"): 3.0493
    assert [(s.half_year, s.days, str(s.rate_percent)) for s in claim.segments] == [
        ("2025-H1", 30, "3.71")]
    assert (claim.interest_cents, claim.indemnity_cents) == (305, 0)
    individual = b2c_claim(number="F-5", invoice_date=date(2025, 1, 1),
                           due_date=date(2025, 1, 31), amount_cents=100000, receipts=[],
                           as_of=date(2025, 4, 9), rates=RATES,
                           notice_received_on=date(2025, 3, 10), creditor_individual=True)
    assert individual.interest_cents == 593  # 7.21 %: 5.9260


def test_b2c_before_notice_bears_no_interest():
    claim = b2c_claim(number="F-6", invoice_date=date(2025, 1, 1), due_date=date(2025, 1, 31),
                      amount_cents=100000, receipts=[], as_of=date(2025, 6, 1), rates=RATES,
                      notice_received_on=None)
    assert (claim.interest_cents, claim.indemnity_cents, claim.segments) == (0, 0, ())


def test_missing_half_year_fails_naming_it():
    with pytest.raises(MissingRateError, match="ecb_mro rate for 2026-H2"):
        b2b_claim(number="F-7", invoice_date=date(2026, 5, 1), due_date=date(2026, 6, 30),
                  amount_cents=100000, receipts=[], as_of=date(2026, 7, 5), rates=RATES)


def test_override_file_adds_a_half_year_without_a_release(tmp_path):
    override = tmp_path / "rates.csv"
    override.write_text("series,half_year,rate_percent,source,compiled_on\n"
                        "ecb_mro,2026-H2,2.00,test fixture: not a published rate,2026-11-24\n")
    rates = RateTable.load(override)
    claim = b2b_claim(number="F-8", invoice_date=date(2026, 5, 1), due_date=date(2026, 6, 30),
                      amount_cents=365000, receipts=[], as_of=date(2026, 7, 5), rates=rates)
    assert [(s.half_year, s.days) for s in claim.segments] == [("2026-H2", 5)]
    assert claim.interest_cents == 600  # 3650.00 * 12 % * 5 / 365 = 6.00
    assert rates.b2b_percent(HalfYear(2025, 1)) == Decimal("13.15")


@pytest.mark.parametrize(
    "line",
    ["ecb_mro,2026-H3,2.00,src,2026-11-24", "ecb_mro,2026-H2,abc,src,2026-11-24",
     "ecb_rate,2026-H2,2.00,src,2026-11-24", "ecb_mro,2026-H2,2.00,,2026-11-24"],
)
def test_malformed_override_is_refused_with_its_line(tmp_path, line):
    override = tmp_path / "bad.csv"
    override.write_text(f"series,half_year,rate_percent,source,compiled_on\n{line}\n")
    with pytest.raises(RatesFileError, match="bad.csv:2"):
        RateTable.load(override)


def test_rounding_is_half_up_to_the_cent():
    # 3.65 EUR at 10 % for 5 days is exactly half a cent.
    seg = InterestSegment(date(2025, 1, 1), date(2025, 1, 5), 365, Decimal("10"), "2025-H1")
    assert (seg.days, seg.interest_cents) == (5, 1)
