"""What a provider's delivery report or an inbound SMS changes in the ledger.

Keyword-only functions on a session, called by `api/routes/provider_events.py`
once the request's signature is verified. Every change is an audit event, so a
finance team sees why an address stopped being used. The workflow honours the
flags at its next send (an invalid email becomes a call task; an opted-out
number falls back to email).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ledger.models import AuditEvent, Customer, MessageStatus, OutboxMessage

# Replies that opt a number out of SMS (Twilio's English keywords and French ones).
STOP_WORDS = frozenset({"STOP", "STOPALL", "ARRET", "ARRÊT", "UNSUBSCRIBE", "CANCEL", "END",
                        "QUIT", "DESINSCRIRE", "DÉSINSCRIRE"})
# Twilio delivery errors meaning the number cannot receive our SMS.
UNREACHABLE_SMS_CODES = frozenset({"21211", "21610", "21612", "21614", "30003", "30005",
                                   "30006", "30007"})


def _outbox(session: Session, *, outbox_id: Any = None,
            provider_id: str | None = None) -> OutboxMessage | None:
    if outbox_id not in (None, ""):
        try:
            return session.get(OutboxMessage, int(outbox_id))
        except (TypeError, ValueError):
            return None
    if provider_id:
        return session.exec(select(OutboxMessage).where(
            OutboxMessage.provider_id == provider_id)).first()
    return None


def _audit(session: Session, *, row: OutboxMessage | None, customer_id: int | None,
           kind: str, detail: dict[str, Any], dedup_key: str) -> None:
    session.add(AuditEvent(invoice_id=row.invoice_id if row else None,
                           customer_id=customer_id, kind=kind, actor="provider",
                           detail=detail, dedup_key=dedup_key[:200]))


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError:
        # The provider retried a report we already recorded.
        session.rollback()


def record_email_event(*, session: Session, event: dict[str, Any]) -> str:
    """One SendGrid Event Webhook event. Returns what was done, for the logs."""
    kind = str(event.get("event", ""))
    row = _outbox(session, outbox_id=event.get("outbox_id"),
                  provider_id=str(event.get("sg_message_id", "")).split(".")[0] or None)
    if row is None or row.channel != "email":
        return "ignored: no matching email"
    hard_bounce = (kind == "bounce" and event.get("type", "bounce") == "bounce") or (
        kind == "dropped" and "bounce" in str(event.get("reason", "")).lower())
    if kind == "delivered":
        if row.status == MessageStatus.SENT:
            row.status = MessageStatus.DELIVERED
    elif hard_bounce or kind in ("dropped", "spamreport"):
        row.status, row.error = MessageStatus.FAILED, f"{kind}: {event.get('reason', '')}"
    else:
        return f"ignored: {kind}"
    if hard_bounce:
        customer = session.get(Customer, row.customer_id)
        if customer is not None:
            customer.email_invalid = True
            session.add(customer)
    session.add(row)
    _audit(session, row=row, customer_id=row.customer_id,
           kind="email_bounced" if hard_bounce else f"email_{kind}",
           detail={"outbox_id": row.id, "recipient": row.recipient, "event": kind,
                   "reason": event.get("reason"), "type": event.get("type"),
                   "address_invalid": hard_bounce},
           dedup_key=f"sendgrid:{event.get('sg_event_id') or (row.id, kind)}")
    _commit(session)
    return f"{kind}: outbox {row.id} {row.status}"


def record_sms_status(*, session: Session, message_sid: str, status: str,
                      error_code: str | None = None) -> str:
    """A Twilio status callback (queued, sent, delivered, undelivered, failed)."""
    row = _outbox(session, provider_id=message_sid)
    if row is None or row.channel != "sms":
        return "ignored: no matching sms"
    if status == "delivered":
        row.status = MessageStatus.DELIVERED
    elif status in ("undelivered", "failed"):
        row.status, row.error = MessageStatus.FAILED, f"{status} (error {error_code})"
    else:
        return f"ignored: {status}"
    unreachable = status != "delivered" and (error_code or "") in UNREACHABLE_SMS_CODES
    if unreachable:
        customer = session.get(Customer, row.customer_id)
        if customer is not None:
            customer.sms_opt_out = True
            session.add(customer)
    session.add(row)
    _audit(session, row=row, customer_id=row.customer_id, kind=f"sms_{status}",
           detail={"outbox_id": row.id, "recipient": row.recipient, "status": status,
                   "error_code": error_code, "number_unusable": unreachable},
           dedup_key=f"twilio:{message_sid}:{status}")
    _commit(session)
    return f"{status}: outbox {row.id}"


def _digits(phone: str) -> str:
    return re.sub(r"[^\d]", "", phone)


def is_stop(body: str) -> bool:
    return body.strip().strip(".!").upper() in STOP_WORDS


def record_inbound_sms(*, session: Session, from_number: str, body: str,
                       message_sid: str) -> list[int]:
    """An SMS reply. STOP (or ARRET) opts every customer with that number out of SMS,
    recorded in the audit trail. Returns the customers opted out."""
    if not is_stop(body):
        return []
    wanted = _digits(from_number)
    opted = []
    for customer in session.exec(select(Customer).where(Customer.phone.is_not(None))):  # type: ignore[union-attr]
        if customer.phone and _digits(customer.phone) == wanted:
            customer.sms_opt_out = True
            session.add(customer)
            _audit(session, row=None, customer_id=customer.id, kind="sms_opt_out",
                   detail={"from": from_number, "reply": body.strip(),
                           "message_sid": message_sid},
                   dedup_key=f"twilio-inbound:{message_sid}:{customer.id}")
            opted.append(customer.id or 0)
    _commit(session)
    return opted
