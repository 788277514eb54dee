"""The dunning state's own rules (pure, no Temporal), and the converter that
keeps one schema per payload type for the whole worker (benchmark 4)."""

from __future__ import annotations

from datetime import date

import pytest
from temporalio.api.common.v1 import Payload

from activities.payloads import Instalment
from dunning_client.converter import RelancePayloadConverter
from workflows.dunning_payloads import (
    DunningInput,
    DunningState,
    InvoiceStatus,
    PaymentReceived,
    PlannedStepState,
)


def _state(**kw: object) -> DunningState:
    return DunningState(**{"balance_cents": 10_000, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "payment", "kinds", "balance", "unapplied", "status"),
    [
        # partial, exact, over: applied up to the balance, the rest kept unapplied
        (_state(), PaymentReceived("p1", 4_000), ["payment_applied"], 6_000, 0, "open"),
        (_state(), PaymentReceived("p1", 10_000), ["payment_applied", "dunning_closed"],
         0, 0, "paid"),
        (_state(), PaymentReceived("p1", 12_500), ["payment_applied", "dunning_closed"],
         0, 2_500, "paid"),
        # counted once: the same payment id again is ignored
        (_state(payment_ids=["p1"]), PaymentReceived("p1", 4_000), None, 10_000, 0, "open"),
        # not a positive amount, or another currency: nothing applied
        (_state(), PaymentReceived("p1", 0), None, 10_000, 0, "open"),
        (_state(), PaymentReceived("p1", 4_000, "USD"), ["payment_rejected"], 10_000, 0, "open"),
        # closed already: the money is kept as unapplied cash for a human
        (_state(status=InvoiceStatus.CANCELLED), PaymentReceived("p1", 4_000),
         ["payment_unapplied"], 10_000, 4_000, "cancelled"),
    ],
)
def test_apply_payment(state: DunningState, payment: PaymentReceived, kinds: list[str] | None,
                       balance: int, unapplied: int, status: str) -> None:
    events = state.apply_payment(payment, "EUR")
    assert (None if events is None else [k for k, _ in events]) == kinds
    assert (state.balance_cents, state.unapplied_cents, state.status) == (
        balance, unapplied, status)


@pytest.mark.parametrize(
    ("instalments", "error"),
    [
        ([], "at least one instalment"),
        ([Instalment(date(2026, 12, 1), 10_000), Instalment(date(2027, 1, 1), 0)], "positive"),
        ([Instalment(date(2026, 12, 1), 9_000)], "total 9000 cents, balance is 10000"),
        ([Instalment(date(2026, 12, 1), 4_000), Instalment(date(2027, 1, 1), 6_000)], None),
    ],
)
def test_check_instalments(instalments: list[Instalment], error: str | None) -> None:
    if error is None:
        _state().check_instalments(instalments)
    else:
        with pytest.raises(ValueError, match=error):
            _state().check_instalments(instalments)


@pytest.mark.parametrize(
    ("next_day", "today", "shift"),
    [(date(2026, 11, 20), date(2026, 11, 24), 4),   # overdue step moves to today
     (date(2026, 11, 30), date(2026, 11, 24), 0)],  # a future step keeps its day
)
def test_resume_plan_keeps_spacing(next_day: date, today: date, shift: int) -> None:
    state = _state(plan=[PlannedStepState("reminder", next_day)])
    state.resume_plan(today)
    assert state.shift_days == shift


def test_next_action_follows_holds() -> None:
    state = _state(plan=[PlannedStepState("reminder", date(2026, 11, 30))])
    assert state.next_action()[0] == "reminder"
    state.paused = True
    assert state.next_action() == ("paused", None)
    state.paused, state.status = False, InvoiceStatus.PAID
    assert state.next_action() == (None, None)


def test_one_schema_per_payload_type_for_the_worker() -> None:
    """The SDK makes a payload converter per workflow run: they must share their
    pydantic type adapters, or each cached workflow holds its own schema."""
    first, second = RelancePayloadConverter(), RelancePayloadConverter()
    [payload] = first.to_payloads([DunningInput(invoice_id=7)])
    assert isinstance(payload, Payload)
    assert first.from_payloads([payload], [DunningInput])[0].invoice_id == 7
    assert second.from_payloads([payload], [DunningInput])[0].invoice_id == 7
    json_first = first.converters[b"json/plain"]
    json_second = second.converters[b"json/plain"]
    assert json_first._type_adapter is json_second._type_adapter  # type: ignore[attr-defined]
