"""Sending a dunning message, effectively exactly once.

The outbox row, unique on (invoice, step, channel), is committed with the rendered
text *before* the provider is called. A retry finds the row: already sent means
nothing to do; a permanent failure is returned, not retried. The only window left
is a crash between the provider's answer and the commit that marks the row sent,
which the real providers narrow by carrying the outbox id in their metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.batching import claim_batch, members, take_lease
from activities.letter import (
    InvoiceFacts,
    LetterComposer,
    LetterDocument,
    claim_context,
    claims_for,
)
from activities.payloads import (
    DispatchMessageInput,
    SendMessageInput,
    SendMessageResult,
    WithdrawMessageInput,
)
from activities.providers.base import (
    Attachment,
    MessageProvider,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
)
from activities.rendering import MessageRenderer, text_to_html
from ledger.letters import notice_totals, step_letters, store_combined_letter
from ledger.models import (
    AuditEvent,
    Customer,
    Invoice,
    InvoiceStatus,
    Letter,
    MessageBatch,
    MessageStatus,
    OutboxMessage,
    Payment,
)
from observability.metrics import message_counted
from rules.aging import days_overdue
from rules.late_payment import MissingRateError, RateTable, Receipt


@dataclass
class Creditor:
    """Who the messages are from, and how to pay them."""

    name: str = ""
    address: str = ""
    email: str = ""
    phone: str = ""
    iban: str = ""
    pay_url_template: str = ""
    # Printed on the mise en demeure: "Paris, le ...", who signs, SIREN.
    city: str = "Paris"
    signatory: str = ""
    legal_id: str = ""


class NotifyActivities:
    def __init__(self, engine: Engine, providers: dict[str, MessageProvider],
                 renderer: MessageRenderer, creditor: Creditor,
                 rates: RateTable | None = None, rates_file: str = "") -> None:
        self.engine = engine
        self.providers = providers
        self.renderer = renderer
        self.creditor = creditor
        # A fixed table (tests), or the packaged table plus the administrator's
        # override file, read again for every letter so an added rate needs no restart.
        self._rates = rates
        self.rates_file = rates_file
        self.letters = LetterComposer(renderer)

    @activity.defn
    def send_message(self, msg: SendMessageInput) -> SendMessageResult:
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._find(session, msg)
            if row is None:
                row = self._prepare(session, msg)
            if row.status != MessageStatus.PENDING:
                return self._result(row)
            if self._do_not_contact(session, row.customer_id):
                row.status, row.error = MessageStatus.SKIPPED, "customer is marked do not contact"
                session.add(row)
                session.commit()
                self._audit(session, row, "message_skipped")
                return self._result(row)
            attachments = []
            if self.letters.has_letter(row.template, row.language):
                letter = self._ensure_letter(session, row, msg)
                attachments.append(Attachment(letter.filename, letter.pdf))
            return self._deliver(session, row, attachments)

    # --- grouped sending (one conversation per customer) -----------------------

    @activity.defn
    def enqueue_message(self, msg: SendMessageInput) -> SendMessageResult:
        """Record the request (rendered alone, in case it stays alone) in its window."""
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._find(session, msg) or self._prepare(session, msg)
            if row.status == MessageStatus.PENDING:
                if self.letters.has_letter(row.template, row.language):
                    self._ensure_letter(session, row, msg)  # the invoice's own PDF, stored
                return SendMessageResult(row.id or 0, "queued")
            return self._result(row)

    @activity.defn
    def dispatch_message(self, dispatch: DispatchMessageInput) -> SendMessageResult:
        """Send the window's message that this request is part of (once)."""
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(OutboxMessage, dispatch.outbox_id)
            if row is None:
                raise ApplicationError(f"outbox {dispatch.outbox_id} not found",
                                       non_retryable=True)
            if row.status != MessageStatus.PENDING:
                return self._result(row)
            batch, claimed = claim_batch(session, row)
            if batch.status == "sending" and self._do_not_contact(session, batch.customer_id):
                # Marked while the request waited for its window: nothing goes out.
                self._skip_batch(session, batch, claimed, "customer is marked do not contact")
            if batch.status == "sending" and not batch.body:
                self._render_batch(session, batch, claimed)
                session.commit()
            if batch.status == "sending":
                if not take_lease(session, batch):
                    raise ApplicationError(f"message batch {batch.id} is being sent",
                                           type="BatchInProgress",
                                           next_retry_delay=timedelta(seconds=5))
                self._deliver_batch(session, batch, members(session, batch))
            session.refresh(row)
            return self._result(row)

    @activity.defn
    def withdraw_message(self, withdraw: WithdrawMessageInput) -> SendMessageResult:
        """The invoice closed while its request waited: drop it unless already in a batch."""
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(OutboxMessage, withdraw.outbox_id)
            if row is None:
                raise ApplicationError(f"outbox {withdraw.outbox_id} not found",
                                       non_retryable=True)
            if row.status == MessageStatus.PENDING and row.batch_id is None:
                row.status, row.error = MessageStatus.SKIPPED, withdraw.reason
                session.add(row)
                session.commit()
                self._audit(session, row, "message_withdrawn")
            return self._result(row)

    @staticmethod
    def _do_not_contact(session: Session, customer_id: int) -> bool:
        customer = session.get(Customer, customer_id)
        if customer is not None:
            session.refresh(customer)  # the mark may have been set since the row was made
        return customer is not None and customer.do_not_contact

    def _skip_batch(self, session: Session, batch: MessageBatch, claimed: list[OutboxMessage],
                    reason: str) -> None:
        """Drop a batch nobody is sending (no live lease); one being sent goes on."""
        now = datetime.now(UTC)
        taken = session.execute(
            update(MessageBatch)
            .where(col(MessageBatch.id) == batch.id, col(MessageBatch.status) == "sending",
                   or_(col(MessageBatch.lease_until).is_(None),
                       col(MessageBatch.lease_until) < now))
            .values(status="skipped", error=reason))
        if taken.rowcount == 0:  # type: ignore[attr-defined]
            session.rollback()
            session.refresh(batch)
            return
        session.refresh(batch)
        self._finish_members(session, batch, claimed, MessageStatus.SKIPPED)
        session.commit()
        for m in claimed:
            message_counted(m.channel, MessageStatus.SKIPPED)
            self._audit(session, m, "message_skipped")

    @staticmethod
    def _result(row: OutboxMessage) -> SendMessageResult:
        match row.status:
            case MessageStatus.SENT | MessageStatus.DELIVERED:
                return SendMessageResult(row.id or 0, "sent", row.provider_id)
            case MessageStatus.SKIPPED:
                return SendMessageResult(row.id or 0, "skipped", reason=row.error)
            case MessageStatus.FAILED:
                return SendMessageResult(row.id or 0, "failed", reason=row.error,
                                         recipient_unusable=True)
        return SendMessageResult(row.id or 0, "queued")

    def _render_batch(self, session: Session, batch: MessageBatch,
                      claimed: list[OutboxMessage]) -> None:
        first = claimed[0]
        batch.template = first.template
        if len(claimed) == 1:
            batch.subject, batch.body = first.subject, first.body
        else:
            customer = session.get(Customer, batch.customer_id)
            assert customer is not None
            invoices = [inv for m in claimed if (inv := session.get(Invoice, m.invoice_id))]
            # The requests' own terms: their day, the policy's deadline and indemnity.
            today = next((m.as_of for m in claimed if m.as_of), datetime.now(UTC).date())
            deadline = today + timedelta(days=max(m.deadline_days for m in claimed) or 8)
            professional = customer.segment == "b2b" and all(m.recovery_indemnity
                                                             for m in claimed)
            with_letters = all(self.letters.has_letter(m.template, m.language) for m in claimed)
            if (batch.channel == "letter" and with_letters
                    and len({inv.currency for inv in invoices}) == 1):
                self._combine_letters(session, batch, claimed, customer, invoices,
                                      today=today, deadline=deadline, professional=professional)
            lines: list[dict[str, Any]] = [{"number": inv.number, "invoice_date": inv.invoice_date,
                      "due_date": inv.due_date, "balance_cents": inv.balance_cents,
                      "currency": inv.currency, "step": m.step_key,
                      "days_overdue": days_overdue(inv.due_date, today)}
                     for inv, m in zip(invoices, claimed, strict=True)]
            batch.template = "grouped"
            rendered = self.renderer.render("grouped", batch.channel, customer.language, {
                **self._creditor_context(),
                "customer": self._customer_context(customer),
                "invoices": lines, "tone": batch.tone, "today": today,
                "currency": lines[0]["currency"],
                "total_cents": sum(line["balance_cents"] for line in lines),
                "recovery_indemnity": professional,
                "deadline": deadline,
                # A formal notice for every invoice: what the enclosed letters claim.
                "notice": notice_totals(step_letters(session, claimed)) if with_letters
                else None,
            })
            batch.subject, batch.body = rendered.subject, rendered.body
        session.add(batch)

    def _combine_letters(self, session: Session, batch: MessageBatch,
                         claimed: list[OutboxMessage], customer: Customer,
                         invoices: list[Invoice], *, today: date, deadline: date,
                         professional: bool) -> Letter:
        """The customer's one letter for the invoices of this registered-post batch,
        each invoice's interest and indemnity from rules.late_payment. Stored in the
        batch's transaction, so a batch is never sent without it nor given two."""
        claim, doc = self._combined_document(session, customer, invoices, today=today,
                                             deadline=deadline, professional=professional)
        return store_combined_letter(
            session, batch=batch, members=claimed, claim=claim, filename=doc.filename,
            pdf=doc.pdf, sha256=doc.sha256, language=customer.language, letter_date=today,
            deadline=deadline)

    def _combined_document(self, session: Session, customer: Customer, invoices: list[Invoice],
                           *, today: date, deadline: date, professional: bool
                           ) -> tuple[dict[str, Any], LetterDocument]:
        claim = self._claim(session, invoices, professional=professional, as_of=today)
        ctx = {**self._creditor_context(), "customer": self._customer_context(customer),
               "currency": invoices[0].currency, "today": today, "deadline": deadline,
               "recovery_indemnity": professional, "claim": claim}
        filename = f"mise-en-demeure-{customer.ref}-{today.isoformat()}.pdf"
        return claim, self.letters.compose("grouped", customer.language, ctx, filename)

    def _deliver_batch(self, session: Session, batch: MessageBatch,
                       claimed: list[OutboxMessage]) -> None:
        provider = self.providers[batch.channel]
        # A formal-notice step's post and email carry the letters it sends: the
        # customer's combined letter once, or each invoice's own.
        attachments = [Attachment(letter.filename, letter.pdf)
                       for letter in step_letters(session, claimed)
                       if batch.channel in ("email", "letter")]
        language = claimed[0].language
        try:
            receipt = provider.send(OutgoingMessage(
                outbox_id=batch.id or 0, channel=batch.channel, recipient=batch.recipient or "",
                body=batch.body, subject=batch.subject, attachments=attachments,
                html=text_to_html(batch.body, language) if batch.channel == "email" else None,
                metadata={"batch_id": str(batch.id),
                          "invoice_ids": ",".join(str(i) for i in batch.invoice_ids)},
            ))
        except PermanentSendError as err:
            batch.status, batch.error, batch.provider = "failed", str(err), provider.name
            self._finish_members(session, batch, claimed, MessageStatus.FAILED)
            self._mark_unusable(session, batch.customer_id, batch.channel)
            session.commit()
            message_counted(batch.channel, MessageStatus.FAILED)
            for m in claimed:
                self._audit(session, m, "message_failed")
            return
        except TransientSendError as err:
            batch.error, batch.lease_until = str(err), None
            session.add(batch)
            session.commit()
            delay = err.retry_after_seconds
            raise ApplicationError(
                f"{provider.name}: {err}", type="TransientSendError",
                next_retry_delay=timedelta(seconds=delay) if delay else None,
            ) from err
        except Exception as err:
            # The provider did not answer: free the lease so the retry sends at once
            # (only a dead worker leaves it to expire).
            session.rollback()
            batch.error, batch.lease_until = repr(err), None
            session.add(batch)
            session.commit()
            raise
        batch.status, batch.provider, batch.provider_id = "sent", provider.name, receipt.provider_id
        batch.sent_at, batch.error = datetime.now(UTC), None
        self._finish_members(session, batch, claimed, MessageStatus.SENT)
        session.commit()
        message_counted(batch.channel, MessageStatus.SENT)
        for m in claimed:
            self._audit(session, m, "message_sent")

    @staticmethod
    def _finish_members(session: Session, batch: MessageBatch, claimed: list[OutboxMessage],
                        status: str) -> None:
        session.add(batch)
        for m in claimed:
            m.status, m.provider, m.provider_id = status, batch.provider, batch.provider_id
            m.error, m.sent_at = batch.error, batch.sent_at
            m.attempts = batch.attempts
            session.add(m)

    @staticmethod
    def _mark_unusable(session: Session, customer_id: int, channel: str) -> None:
        customer = session.get(Customer, customer_id)
        if customer is None or channel not in ("email", "sms"):
            return
        if channel == "email":
            customer.email_invalid = True
        else:
            customer.sms_opt_out = True
        session.add(customer)

    # --- steps of a send --------------------------------------------------------

    @staticmethod
    def _find(session: Session, msg: SendMessageInput) -> OutboxMessage | None:
        return session.exec(select(OutboxMessage).where(
            OutboxMessage.invoice_id == msg.invoice_id,
            OutboxMessage.step_key == msg.step_key,
            OutboxMessage.channel == msg.channel,
        )).first()

    def _prepare(self, session: Session, msg: SendMessageInput) -> OutboxMessage:
        """Render the message and commit it as pending (or skipped, or failed)."""
        invoice = session.get(Invoice, msg.invoice_id)
        if invoice is None:
            raise ApplicationError(f"invoice {msg.invoice_id} not in ledger", non_retryable=True)
        customer = session.get(Customer, invoice.customer_id)
        assert customer is not None
        rendered = self.renderer.render(msg.template, msg.channel, customer.language,
                                        self._full_context(session, invoice, customer, msg))
        row = OutboxMessage(
            invoice_id=msg.invoice_id, customer_id=customer.id or 0, step_key=msg.step_key,
            channel=msg.channel, template=msg.template, language=customer.language,
            recipient=self._recipient(customer, msg.channel), subject=rendered.subject,
            body=rendered.body, window=msg.window or None, tone=msg.tone,
            deadline_days=msg.deadline_days, recovery_indemnity=msg.recovery_indemnity,
            as_of=msg.as_of,
        )
        refusal = self._refusal(customer, row)
        if refusal is not None:
            row.status, row.error = refusal
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            # Another attempt of this same activity got there first.
            session.rollback()
            found = self._find(session, msg)
            assert found is not None
            return found
        if row.status != MessageStatus.PENDING:
            message_counted(row.channel, row.status)
            self._audit(session, row, f"message_{row.status}")
        return row

    @staticmethod
    def _recipient(customer: Customer, channel: str) -> str | None:
        match channel:
            case "email":
                return customer.email
            case "sms":
                return customer.phone
            case "letter":
                return f"{customer.name}\n{customer.address}" if customer.address else None
        return None

    @staticmethod
    def _refusal(customer: Customer, row: OutboxMessage) -> tuple[str, str] | None:
        if customer.do_not_contact:
            return MessageStatus.SKIPPED, "customer is marked do not contact"
        if row.channel == "sms" and customer.sms_opt_out:
            return MessageStatus.FAILED, "number opted out of SMS or is wrong"
        if row.channel == "email" and customer.email_invalid:
            return MessageStatus.FAILED, "email address bounced"
        if not row.recipient:
            return MessageStatus.FAILED, f"customer has no {row.channel} recipient"
        return None

    def _ensure_letter(self, session: Session, row: OutboxMessage,
                       msg: SendMessageInput) -> Letter:
        """The step's letter PDF, composed and stored once; linked to the outbox row
        of the registered-post send, attached to the email of the same step."""
        letter = session.exec(select(Letter).where(
            Letter.invoice_id == row.invoice_id, Letter.step_key == row.step_key)).first()
        if letter is None:
            invoice = session.get(Invoice, row.invoice_id)
            customer = session.get(Customer, row.customer_id)
            assert invoice is not None and customer is not None
            ctx = self._full_context(session, invoice, customer, msg)
            doc = self.compose_letter(invoice, customer, msg.template, ctx)
            claim = ctx["claim"]
            letter = Letter(
                invoice_id=row.invoice_id, customer_id=row.customer_id, step_key=row.step_key,
                language=customer.language, filename=doc.filename, pdf=doc.pdf,
                sha256=doc.sha256, letter_date=ctx["today"], deadline=ctx["deadline"],
                principal_cents=claim["principal_cents"], interest_cents=claim["interest_cents"],
                indemnity_cents=claim["indemnity_cents"],
            )
            session.add(letter)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return self._ensure_letter(session, row, msg)
        if row.channel == "letter" and letter.outbox_id is None:
            letter.outbox_id = row.id
            session.add(letter)
            session.commit()
        return letter

    def compose_letter(self, invoice: Invoice, customer: Customer, template: str,
                       ctx: dict[str, Any]) -> LetterDocument:
        filename = f"mise-en-demeure-{invoice.number}-{ctx['today'].isoformat()}.pdf"
        return self.letters.compose(template, customer.language, ctx, filename)

    def _deliver(self, session: Session, row: OutboxMessage,
                 attachments: list[Attachment] | None = None) -> SendMessageResult:
        provider = self.providers[row.channel]
        row.attempts += 1
        try:
            receipt = provider.send(OutgoingMessage(
                outbox_id=row.id or 0, channel=row.channel, recipient=row.recipient or "",
                body=row.body, subject=row.subject,
                html=text_to_html(row.body, row.language) if row.channel == "email" else None,
                metadata={"invoice_id": str(row.invoice_id), "step": row.step_key,
                          "outbox_id": str(row.id)},
                attachments=attachments or [],
            ))
        except PermanentSendError as err:
            row.status, row.error, row.provider = MessageStatus.FAILED, str(err), provider.name
            session.add(row)
            # The recipient is unusable for every later step, of every invoice.
            self._mark_unusable(session, row.customer_id, row.channel)
            session.commit()
            message_counted(row.channel, MessageStatus.FAILED)
            self._audit(session, row, "message_failed")
            return SendMessageResult(row.id or 0, "failed", reason=str(err),
                                     recipient_unusable=True)
        except TransientSendError as err:
            row.error = str(err)
            session.add(row)
            session.commit()
            message_counted(row.channel, "retrying")
            delay = err.retry_after_seconds
            raise ApplicationError(
                f"{provider.name}: {err}", type="TransientSendError",
                next_retry_delay=timedelta(seconds=delay) if delay else None,
            ) from err
        row.status, row.provider, row.provider_id = (MessageStatus.SENT, provider.name,
                                                     receipt.provider_id)
        row.sent_at, row.error = datetime.now(UTC), None
        session.add(row)
        session.commit()
        message_counted(row.channel, MessageStatus.SENT)
        self._audit(session, row, "message_sent")
        return SendMessageResult(row.id or 0, "sent", receipt.provider_id)

    @staticmethod
    def _audit(session: Session, row: OutboxMessage, kind: str) -> None:
        session.add(AuditEvent(
            invoice_id=row.invoice_id, customer_id=row.customer_id, kind=kind,
            detail={"channel": row.channel, "step": row.step_key, "template": row.template,
                    "recipient": row.recipient, "subject": row.subject, "text": row.body,
                    "provider": row.provider, "provider_id": row.provider_id,
                    "status": row.status, "error": row.error, "outbox_id": row.id,
                    "batch_id": row.batch_id},
            dedup_key=f"outbox-{row.id}:{kind}",
        ))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()

    # --- what a template sees -----------------------------------------------------

    def context(self, invoice: Invoice, customer: Customer,
                msg: SendMessageInput) -> dict[str, Any]:
        today = msg.as_of or datetime.now(UTC).date()
        c = self.creditor
        return {
            **self._creditor_context(),
            "customer": self._customer_context(customer),
            "invoice": {"number": invoice.number, "invoice_date": invoice.invoice_date,
                        "due_date": invoice.due_date, "amount_cents": invoice.amount_cents},
            "currency": invoice.currency,
            "balance_cents": msg.balance_cents,
            "paid_cents": invoice.amount_cents - msg.balance_cents,
            "days_overdue": max(0, (today - invoice.due_date).days),
            "today": today,
            "deadline": today + timedelta(days=msg.deadline_days or 8),
            "recovery_indemnity": msg.recovery_indemnity and customer.segment == "b2b",
            "pay_url": c.pay_url_template.format(invoice=invoice.number)
            if c.pay_url_template else "",
        }

    @staticmethod
    def _customer_context(customer: Customer) -> dict[str, Any]:
        return {"name": customer.name, "ref": customer.ref, "address": customer.address or ""}

    def _creditor_context(self) -> dict[str, Any]:
        c = self.creditor
        return {"creditor": {"name": c.name, "address": c.address, "email": c.email,
                             "phone": c.phone, "iban": c.iban, "city": c.city,
                             "signatory": c.signatory, "legal_id": c.legal_id},
                "pay_url": ""}

    @property
    def rates(self) -> RateTable:
        if self._rates is not None:
            return self._rates
        return RateTable.load(self.rates_file) if self.rates_file else RateTable.load()

    def _full_context(self, session: Session, invoice: Invoice, customer: Customer,
                      msg: SendMessageInput) -> dict[str, Any]:
        """The context, plus the claim (principal, interest, indemnity) for a step
        that carries a letter."""
        ctx = self.context(invoice, customer, msg)
        if not self.letters.has_letter(msg.template, customer.language):
            return ctx
        professional = customer.segment == "b2b" and msg.recovery_indemnity
        ctx["claim"] = self._claim(session, [invoice], professional=professional,
                                   as_of=ctx["today"])
        return ctx

    def _claim(self, session: Session, invoices: list[Invoice], *, professional: bool,
               as_of: date) -> dict[str, Any]:
        """What a letter claims for these invoices on `as_of` (rules.late_payment)."""
        rates = self.rates
        try:
            claims = claims_for([self._facts(session, i) for i in invoices],
                                professional=professional, as_of=as_of, rates=rates)
        except MissingRateError as err:
            # Retried with backoff: an administrator adds the rate, the letter goes out.
            raise ApplicationError(str(err), type="MissingRateError") from err
        return claim_context(claims, professional=professional, as_of=as_of, rates=rates)

    @staticmethod
    def _facts(session: Session, invoice: Invoice) -> InvoiceFacts:
        receipts = tuple(
            Receipt(p.received_at.date(), p.applied_cents)
            for p in session.exec(select(Payment).where(Payment.invoice_id == invoice.id))
            if p.applied_cents > 0)
        # Paid before Relance knew the invoice (an imported balance below the amount):
        # counted as paid by the due date, so it never bears interest.
        unexplained = invoice.amount_cents - invoice.balance_cents - sum(
            r.amount_cents for r in receipts)
        if unexplained > 0:
            receipts = (Receipt(invoice.invoice_date, unexplained), *receipts)
        return InvoiceFacts(invoice.number, invoice.invoice_date, invoice.due_date,
                            invoice.amount_cents, receipts)

    def preview(self, invoice_id: int, step_key: str, channel: str, template: str,
                balance_cents: int | None = None, as_of: date | None = None,
                deadline_days: int = 8, recovery_indemnity: bool = True) -> dict[str, Any]:
        """Render a step for an invoice without sending or recording anything."""
        with Session(self.engine) as session:
            invoice, customer = _invoice_and_customer(session, invoice_id)
            msg = SendMessageInput(invoice_id=invoice_id, step_key=step_key, channel=channel,
                                   template=template,
                                   balance_cents=invoice.balance_cents
                                   if balance_cents is None else balance_cents,
                                   as_of=as_of, deadline_days=deadline_days,
                                   recovery_indemnity=recovery_indemnity)
            ctx = self._full_context(session, invoice, customer, msg)
            rendered = self.renderer.render(template, channel, customer.language, ctx)
            preview: dict[str, Any] = {"subject": rendered.subject, "body": rendered.body,
                                       "html": rendered.html,
                                       "recipient": self._recipient(customer, channel)}
            if self.letters.has_letter(template, customer.language):
                preview["letter"] = self.compose_letter(invoice, customer, template, ctx)
            return preview

    def preview_combined(self, invoice_id: int, as_of: date | None = None,
                         deadline_days: int = 8, recovery_indemnity: bool = True
                         ) -> dict[str, Any]:
        """The combined formal notice of the invoice's customer for all of its open
        invoices, as printed if they reached the step together; nothing recorded."""
        with Session(self.engine) as session:
            invoice, customer = _invoice_and_customer(session, invoice_id)
            invoices = list(session.exec(select(Invoice).where(
                Invoice.customer_id == customer.id, Invoice.status == InvoiceStatus.OPEN,
                Invoice.currency == invoice.currency, Invoice.balance_cents > 0,  # type: ignore[operator]
            ).order_by(Invoice.id)))  # type: ignore[arg-type]
            today = as_of or datetime.now(UTC).date()
            claim, doc = self._combined_document(
                session, customer, invoices or [invoice], today=today,
                deadline=today + timedelta(days=deadline_days or 8),
                professional=customer.segment == "b2b" and recovery_indemnity)
            return {"customer": customer.name, "claim": claim, "letter": doc,
                    "recipient": self._recipient(customer, "letter")}


def _invoice_and_customer(session: Session, invoice_id: int) -> tuple[Invoice, Customer]:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise LookupError(f"invoice {invoice_id} not found")
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    return invoice, customer
