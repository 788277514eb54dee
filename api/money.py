"""Money at the edge: decimals with a currency, never floats; cents inside."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
Amount = Annotated[Decimal, Field(max_digits=14, decimal_places=2, examples=["1250.00"])]
PositiveAmount = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2,
                                          examples=["1250.00"])]


class Money(BaseModel):
    amount: Amount
    currency: Currency


def to_cents(amount: Decimal) -> int:
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} has more than two decimals")
    return int(cents)


def money(cents: int | None, currency: str) -> Money:
    return Money(amount=(Decimal(cents or 0) / 100).quantize(Decimal("0.01")), currency=currency)
