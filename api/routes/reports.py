"""Reports for managers: aged balance, DSO, counts by stage. SQL aggregates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api.deps import ManagerUser, SessionDep
from api.errors import responses
from api.money import Currency, Money, money
from ledger.reports import aged_balance, dso_inputs, stage_counts
from rules.aging import dso

router = APIRouter(prefix="/reports", tags=["reports"])


class AgedOut(BaseModel):
    bucket: str
    count: int
    balance: Money


class AgingReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"as_of": "2026-11-24", "buckets": [
        {"bucket": "not_due", "count": 3, "balance": {"amount": "1200.00", "currency": "EUR"}},
        {"bucket": "1-30", "count": 2, "balance": {"amount": "4500.00", "currency": "EUR"}}]}]})
    as_of: str
    buckets: list[AgedOut]


@router.get("/aging", response_model=AgingReport, responses=responses(401, 403))
def aging(session: SessionDep, _: ManagerUser) -> AgingReport:
    """Outstanding balance by age: not due, 1-30, 31-60, 61-90, over 90 days."""
    today = datetime.now(UTC).date()
    return AgingReport(as_of=today.isoformat(), buckets=[
        AgedOut(bucket=a.bucket, count=a.count, balance=money(a.balance_cents, a.currency))
        for a in aged_balance(session, today)])


class DsoReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "period_days": 90, "receivables": {"amount": "45000.00", "currency": "EUR"},
        "credit_sales": {"amount": "135000.00", "currency": "EUR"}, "dso_days": 30.0}]})
    period_days: int
    receivables: Money
    credit_sales: Money
    dso_days: float | None


@router.get("/dso", response_model=DsoReport, responses=responses(401, 403))
def days_sales_outstanding(
    session: SessionDep, _: ManagerUser,
    period_days: Annotated[int, Query(ge=1, le=3650)] = 90,
    currency: Annotated[Currency, Query()] = "EUR",
) -> DsoReport:
    """DSO = receivables / invoiced over the period x days; null with no sales."""
    d = dso_inputs(session, datetime.now(UTC).date(), period_days, currency)
    return DsoReport(period_days=period_days, receivables=money(d.receivables_cents, currency),
                     credit_sales=money(d.credit_sales_cents, currency),
                     dso_days=dso(d.receivables_cents, d.credit_sales_cents, period_days))


class StageOut(BaseModel):
    stage: str
    status: str
    count: int
    balance_cents: int


@router.get("/stages", response_model=list[StageOut], responses=responses(401, 403))
def stages(session: SessionDep, _: ManagerUser) -> list[StageOut]:
    """How many invoices sit at each stage, and their balance."""
    return [StageOut(**vars(s)) for s in stage_counts(session)]
