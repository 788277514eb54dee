"""Dunning policies: which step happens how many days from the due date.

Policies are data. A workflow snapshots its policy when it starts, so editing a
policy (or the defaults below) never changes the plan of a running invoice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    CALL = "call"
    LETTER = "letter"
    ESCALATION = "escalation"


class Segment(StrEnum):
    B2B = "b2b"
    B2C = "b2c"


@dataclass(frozen=True)
class DunningStep:
    key: str = ""
    channel: Channel = Channel.EMAIL
    # Calendar days from the due date (negative: before it).
    offset_days: int = 0
    template: str = ""
    # Firmness 0 (courteous) .. 4 (formal); grouping uses the most advanced tone.
    tone: int = 0


@dataclass(frozen=True)
class DunningPolicy:
    code: str = ""
    segment: Segment = Segment.B2B
    steps: list[DunningStep] = field(default_factory=list)
    # Days a promise to pay is given beyond its date before dunning resumes.
    promise_grace_days: int = 3
    # Deadline printed on the mise en demeure.
    formal_notice_deadline_days: int = 8
    # The 40 EUR indemnité forfaitaire applies to professional debtors only.
    recovery_indemnity: bool = True

    def step(self, key: str) -> DunningStep:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(f"policy {self.code} has no step {key!r}")


B2B_DEFAULT = DunningPolicy(
    code="b2b-default",
    segment=Segment.B2B,
    steps=[
        DunningStep("pre_reminder", Channel.EMAIL, -5, "pre_reminder", 0),
        DunningStep("reminder", Channel.EMAIL, 1, "reminder", 1),
        DunningStep("sms_reminder", Channel.SMS, 7, "sms_reminder", 2),
        DunningStep("call", Channel.CALL, 14, "call", 2),
        DunningStep("last_reminder", Channel.EMAIL, 21, "last_reminder", 3),
        DunningStep("mise_en_demeure", Channel.LETTER, 30, "mise_en_demeure", 4),
        DunningStep("escalation", Channel.ESCALATION, 38, "escalation", 4),
    ],
)

# Consumers: softer cadence, no 40 EUR indemnity (L111-8 CPCE).
B2C_DEFAULT = DunningPolicy(
    code="b2c-default",
    segment=Segment.B2C,
    recovery_indemnity=False,
    formal_notice_deadline_days=15,
    promise_grace_days=5,
    steps=[
        DunningStep("pre_reminder", Channel.EMAIL, -3, "pre_reminder", 0),
        DunningStep("reminder", Channel.EMAIL, 3, "reminder", 1),
        DunningStep("sms_reminder", Channel.SMS, 10, "sms_reminder", 1),
        DunningStep("call", Channel.CALL, 20, "call", 2),
        DunningStep("last_reminder", Channel.EMAIL, 30, "last_reminder", 3),
        DunningStep("mise_en_demeure", Channel.LETTER, 45, "mise_en_demeure", 4),
        DunningStep("escalation", Channel.ESCALATION, 60, "escalation", 4),
    ],
)

POLICIES: dict[str, DunningPolicy] = {p.code: p for p in (B2B_DEFAULT, B2C_DEFAULT)}
DEFAULT_POLICY_BY_SEGMENT: dict[Segment, str] = {
    Segment.B2B: B2B_DEFAULT.code,
    Segment.B2C: B2C_DEFAULT.code,
}


def policy_for(segment: Segment | str, code: str | None = None) -> DunningPolicy:
    """The customer's explicit policy if it has one, else its segment's default."""
    if code:
        try:
            return POLICIES[code]
        except KeyError:
            raise ValueError(f"unknown dunning policy {code!r}") from None
    return POLICIES[DEFAULT_POLICY_BY_SEGMENT[Segment(segment)]]
