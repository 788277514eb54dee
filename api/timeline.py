"""An invoice's story: its Temporal history turned into sentences, merged with
the ledger's audit trail (which holds the text of every message)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import PayloadConverter

from ledger.models import AuditEvent


@dataclass
class Entry:
    at: datetime
    source: str  # "temporal" | "ledger"
    kind: str
    summary: str
    actor: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _decode(converter: PayloadConverter, payloads: Any) -> list[Any]:
    if payloads is None or not payloads.payloads:
        return []
    try:
        return list(converter.from_payloads(list(payloads.payloads)))
    except Exception:  # an undecodable payload is shown as absent, not a 500
        return []


def _first(values: list[Any]) -> dict[str, Any]:
    return values[0] if values and isinstance(values[0], dict) else {}


def _cents(value: Any) -> str:
    return f"{int(value or 0) / 100:.2f}"


class HistoryReader:
    """Reads events in order, remembering what the workflow said it would do next
    (from its ledger-mirror activity) so a timer can say what it is waiting for."""

    def __init__(self, converter: PayloadConverter) -> None:
        self.converter = converter
        self.next_action: str | None = None
        self.stage: str | None = None
        self.activities: dict[int, str] = {}

    def read(self, event: HistoryEvent) -> Entry | None:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        t = event.event_type
        a: Any  # the attributes message of the event's type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            inp = _first(_decode(self.converter,
                                 event.workflow_execution_started_event_attributes.input))
            policy = (inp.get("policy") or {}).get("code", "")
            return Entry(at, "temporal", "workflow_started",
                         f"dunning started: policy {policy}, balance "
                         f"{_cents(inp.get('balance_cents'))} {inp.get('currency', '')}, "
                         f"due {inp.get('due_date', '')}")
        if t == EventType.EVENT_TYPE_TIMER_STARTED:
            a = event.timer_started_event_attributes
            fire = at + timedelta(seconds=a.start_to_fire_timeout.ToTimedelta().total_seconds())
            what = self.next_action or "next change"
            return Entry(at, "temporal", "timer_started",
                         f"waiting until {fire.isoformat()} for {what}",
                         detail={"fires_at": fire.isoformat(), "for": what})
        if t == EventType.EVENT_TYPE_TIMER_FIRED:
            return Entry(at, "temporal", "timer_fired", f"timer fired ({self.next_action})")
        if t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            return self._activity_scheduled(event, at)
        if t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            a = event.activity_task_completed_event_attributes
            name = self.activities.get(a.scheduled_event_id, "")
            if name in ("send_message", "dispatch_message", "withdraw_message"):
                res = _first(_decode(self.converter, a.result))
                return Entry(at, "temporal", "message_result",
                             f"message {res.get('status', '')} (outbox {res.get('outbox_id')})",
                             detail=res)
            return None
        if t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            a = event.activity_task_failed_event_attributes
            return Entry(at, "temporal", "activity_failed",
                         f"{self.activities.get(a.scheduled_event_id, 'activity')} failed: "
                         f"{a.failure.message}")
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            a = event.workflow_execution_signaled_event_attributes
            arg = _first(_decode(self.converter, a.input))
            if a.signal_name == "payment_received":
                return Entry(at, "temporal", "signal_received",
                             f"payment received: {_cents(arg.get('amount_cents'))} "
                             f"{arg.get('currency', '')} (payment {arg.get('payment_id')})",
                             detail=arg)
            return Entry(at, "temporal", "signal_received", f"signal {a.signal_name}", detail=arg)
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            req = event.workflow_execution_update_accepted_event_attributes.accepted_request
            arg = _first(_decode(self.converter, req.input.args))
            who = arg.get("agent") or arg.get("actor")
            return Entry(at, "temporal", "update_accepted",
                         f"update {req.input.name} accepted" + (f" from {who}" if who else ""),
                         actor=who, detail=arg)
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            a = event.workflow_execution_update_completed_event_attributes
            if a.outcome.HasField("failure"):
                return Entry(at, "temporal", "update_failed",
                             f"update failed: {a.outcome.failure.message}")
            res = _first(_decode(self.converter, a.outcome.success))
            return Entry(at, "temporal", "update_completed",
                         f"update completed, stage {res.get('stage', '')}", detail=res)
        if t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes \
                .search_attributes.indexed_fields
            if "RelanceStage" in fields:
                stage = self.converter.from_payloads([fields["RelanceStage"]])[0]
                if stage != self.stage:
                    self.stage = stage
                    return Entry(at, "temporal", "stage_changed", f"stage is now {stage}")
            return None
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            res = _first(_decode(self.converter,
                                 event.workflow_execution_completed_event_attributes.result))
            return Entry(at, "temporal", "workflow_completed",
                         f"dunning ended: {res.get('status', '')}, balance "
                         f"{_cents(res.get('balance_cents'))}", detail=res)
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return Entry(at, "temporal", "continued_as_new",
                         "history rolled over (continue-as-new)")
        if t in (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
                 EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
                 EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
                 EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED):
            return Entry(at, "temporal", "workflow_stopped",
                         f"workflow {EventType.Name(t).removeprefix('EVENT_TYPE_').lower()}")
        return None

    def _activity_scheduled(self, event: HistoryEvent, at: datetime) -> Entry | None:
        a = event.activity_task_scheduled_event_attributes
        name = a.activity_type.name
        self.activities[event.event_id] = name
        arg = _first(_decode(self.converter, a.input))
        if name == "record_progress":
            self.next_action = arg.get("next_action")
            return None
        if name in ("send_message", "enqueue_message"):
            # enqueue_message: the request joins the customer's window, and goes
            # out grouped with the customer's other invoices of that window.
            window = f", window {arg['window']}" if arg.get("window") else ""
            return Entry(at, "temporal", "message_scheduled",
                         f"send {arg.get('channel')} for step {arg.get('step_key')} "
                         f"(template {arg.get('template')}{window})", detail=arg)
        if name == "dispatch_message":
            return Entry(at, "temporal", "message_dispatched",
                         f"send the customer's message for outbox {arg.get('outbox_id')}",
                         detail=arg)
        if name == "create_call_task":
            return Entry(at, "temporal", "call_task_scheduled",
                         f"open a call task for step {arg.get('step_key')}: "
                         f"{arg.get('reason', '')}", detail=arg)
        return Entry(at, "temporal", "activity_scheduled", f"{name}", detail=arg)


def audit_entry(e: AuditEvent) -> Entry:
    d = dict(e.detail or {})
    if e.kind.startswith("message_"):
        summary = f"{e.kind.replace('_', ' ')}: {d.get('channel')} for {d.get('step')} " \
                  f"to {d.get('recipient')}"
    elif e.kind == "letter_combined":
        summary = f"one formal notice (letter {d.get('letter_id')}) for invoices " \
                  f"{', '.join(d.get('invoice_numbers') or [])}: this one " \
                  f"{_cents(d.get('principal_cents'))} + interest " \
                  f"{_cents(d.get('interest_cents'))} + indemnity " \
                  f"{_cents(d.get('indemnity_cents'))}"
    else:
        summary = e.kind.replace("_", " ")
        if d.get("reason"):
            summary += f": {d['reason']}"
    at = e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC)
    return Entry(at, "ledger", e.kind, summary, actor=e.actor, detail=d)


def merge(history: list[Entry], audit: list[Entry]) -> list[Entry]:
    """One list by time; history keeps its own order, ties go to Temporal first."""
    return sorted(history + audit, key=lambda e: (e.at, e.source != "temporal"))


@dataclass
class CustomerEntry:
    entry: Entry
    invoice_ids: list[int] = field(default_factory=list)


def customer_timeline(events: list[AuditEvent], numbers: dict[int, str]) -> list[CustomerEntry]:
    """A customer's audit trail (its invoices' and its own events) in order. The
    invoices' records of one grouped message (same batch, same provider id) become
    one entry naming every invoice it covered, as the customer received it."""
    out: list[CustomerEntry] = []
    batches: dict[tuple[str, Any], CustomerEntry] = {}
    for e in sorted(events, key=lambda e: (e.at, e.id or 0)):
        batch = (e.detail or {}).get("batch_id")
        if e.kind.startswith("message_") and batch is not None:
            found = batches.get((e.kind, batch))
            if found is not None:
                if e.invoice_id is not None:
                    found.invoice_ids.append(e.invoice_id)
                continue
            batches[(e.kind, batch)] = found = CustomerEntry(audit_entry(e), [])
            if e.invoice_id is not None:
                found.invoice_ids.append(e.invoice_id)
            out.append(found)
            continue
        out.append(CustomerEntry(audit_entry(e), [e.invoice_id] if e.invoice_id else []))
    for grouped in batches.values():
        if len(grouped.invoice_ids) > 1:
            listed = ", ".join(numbers.get(i, str(i)) for i in grouped.invoice_ids)
            grouped.entry.summary += f" (one message for invoices {listed})"
            grouped.entry.detail.pop("step", None)  # each invoice had its own step
    return out
