"""The `relance` command line: run the product, load the ledger, steer invoices."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from ledger.csv_import import CsvImportError, parse_csv
from ledger.db import make_engine, migrate
from settings import DATA_DIR, Settings, get_settings

if TYPE_CHECKING:
    from activities.notify import NotifyActivities

app = typer.Typer(help="Relance: workflow-orchestrated collections.", no_args_is_help=True)
console = Console()


def _settings() -> Settings:
    return get_settings()


@app.command("migrate")
def migrate_cmd() -> None:
    """Create or upgrade the ledger schema (Alembic)."""
    settings = _settings()
    migrate(settings.database_url)
    console.print(f"ledger schema up to date ({settings.database_url.split('@')[-1]})")


@app.command("worker")
def worker_cmd() -> None:
    """Run a Temporal worker on the dunning task queue (scale out: run more)."""
    from observability.logs import configure_logging
    from worker import run_worker

    settings = _settings()
    configure_logging(settings)
    asyncio.run(run_worker(settings))


@app.command("api")
def api_cmd() -> None:
    """Serve the HTTP API (uvicorn) on RELANCE_API_HOST:RELANCE_API_PORT."""
    import uvicorn

    from api.main import app as api_app
    from observability.logs import configure_logging
    from observability.tracing import instrument_api

    settings = _settings()
    configure_logging(settings)
    instrument_api(api_app, settings)
    uvicorn.run(api_app, host=settings.api_host, port=settings.api_port,
                log_config=None, proxy_headers=True)


@app.command("setup-temporal")
def setup_temporal_cmd(
    wait: Annotated[int, typer.Option(help="Seconds to wait for Temporal to answer.")] = 120,
) -> None:
    """Register Relance's search attributes on the Temporal namespace (idempotent)."""
    from dunning_client.start import SEARCH_ATTRIBUTES, connect, register_search_attributes

    settings = _settings()

    async def run() -> None:
        from temporalio.service import RPCError

        deadline = time.monotonic() + wait
        while True:
            try:
                client = await connect(settings)
                await register_search_attributes(client, settings.temporal_namespace)
                return
            # The server is still starting, or its namespace is not created yet.
            except (RuntimeError, RPCError) as err:
                if time.monotonic() > deadline:
                    console.print(f"[red]Temporal at {settings.temporal_address}, namespace "
                                  f"{settings.temporal_namespace}: {err}[/red]")
                    raise typer.Exit(1) from err
                await asyncio.sleep(2)

    asyncio.run(run())
    console.print(f"search attributes {', '.join(SEARCH_ATTRIBUTES)} registered on "
                  f"{settings.temporal_namespace}")


@app.command("purge")
def purge_cmd(
    older_than_days: Annotated[int | None, typer.Option(
        min=0, help="Anonymise invoices closed more than N days ago "
                    "(default RELANCE_RETENTION_DAYS).")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 200,
) -> None:
    """Anonymise closed invoices' personal data (recipients, message texts, notes,
    customer identity), keeping amounts and audit facts."""
    from rich.progress import Progress

    from ledger.models import utcnow
    from ledger.retention import purge_personal_data, purgeable_invoice_ids

    settings = _settings()
    days = settings.retention_days if older_than_days is None else older_than_days
    engine = make_engine(settings.database_url)
    total = len(purgeable_invoice_ids(engine, closed_before=utcnow() - timedelta(days=days)))
    with Progress(console=console) as progress:
        bar = progress.add_task(f"invoices closed more than {days} days ago", total=total)
        report = purge_personal_data(engine, older_than_days=days, batch_size=batch_size,
                                     progress=lambda n: progress.advance(bar, n))
    console.print(f"{report.invoices} invoices anonymised: {report.messages} messages, "
                  f"{report.audit_events} audit details, {report.call_tasks} call notes; "
                  f"{report.customers} customers anonymised")


@app.command("import")
def import_cmd(
    csv_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    start: Annotated[bool, typer.Option(help="Start a workflow per open invoice.")] = True,
) -> None:
    """Import a CSV of invoices (customer, invoice number, invoice date, amount,
    currency, due date, status) and start one workflow per open invoice."""
    settings = _settings()
    try:
        rows = parse_csv(csv_file.read_text(encoding="utf-8-sig"))
    except CsvImportError as err:
        console.print(f"[red]{csv_file}: nothing imported[/red]")
        for line in err.errors:
            console.print(f"  {line}")
        raise typer.Exit(2) from None
    report = asyncio.run(_import(settings, rows, start))
    console.print(report)


async def _import(settings: Settings, rows: list, start: bool) -> str:  # type: ignore[type-arg]
    from dunning_client.start import connect, start_dunning
    from ledger.crud import import_invoices

    engine = make_engine(settings.database_url)
    migrate(settings.database_url)
    with Session(engine) as session:
        report = import_invoices(session=session, rows=rows)
    started = 0
    if start and report.open_invoice_ids:
        client = await connect(settings)
        with console.status(f"starting {len(report.open_invoice_ids)} workflows"):
            started = len(await start_dunning(client, engine, settings,
                                              report.open_invoice_ids))
    return (f"{report.invoices_created} invoices imported, {report.invoices_existing} already "
            f"in the ledger, {report.customers_created} new customers; "
            f"{started} open invoices have a running workflow")


@app.command("status")
def status_cmd(invoice_id: int) -> None:
    """Ask an invoice's workflow where it stands (stage, balance, next action)."""

    async def query() -> dict:  # type: ignore[type-arg]
        from dunning_client.start import connect, workflow_id
        from workflows.dunning import DunningWorkflow

        client = await connect(_settings())
        handle = client.get_workflow_handle_for(DunningWorkflow.run, workflow_id(invoice_id))
        return asdict(await handle.query(DunningWorkflow.status))

    console.print_json(json.dumps(asyncio.run(query()), default=str))


@app.command("list")
def list_cmd(query: Annotated[str, typer.Argument(help="Temporal visibility query")] = "",
             limit: int = 50) -> None:
    """List invoice workflows, e.g. `relance list "RelanceStage = 'call'"`."""

    async def run() -> None:
        from dunning_client.start import connect

        client = await connect(_settings())
        table = Table("workflow", "status", "stage", "customer", "amount due", "next action at")
        n = 0
        async for wf in client.list_workflows(query or None):
            sa = wf.typed_search_attributes
            from workflows.dunning import AMOUNT_DUE, CUSTOMER, NEXT_ACTION_AT, STAGE

            table.add_row(wf.id, wf.status.name if wf.status else "", sa.get(STAGE) or "",
                          sa.get(CUSTOMER) or "", f"{sa.get(AMOUNT_DUE) or 0:.2f}",
                          str(sa.get(NEXT_ACTION_AT) or ""))
            n += 1
            if n >= limit:
                break
        console.print(table)

    asyncio.run(run())


def temporal_dev_server_cmd(settings: Settings) -> list[str]:
    """The embedded Temporal: dev server with its Web UI, persisted in .relance/."""
    from dunning_client.start import SEARCH_ATTRIBUTES

    binary = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    host, port = settings.temporal_address.rsplit(":", 1)
    kinds = {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime"}
    cmd = [binary, "server", "start-dev", "--ip", host, "--port", port,
           "--ui-port", settings.temporal_ui_url.rsplit(":", 1)[-1],
           "--db-filename", str(DATA_DIR / "temporal.db"), "--log-level", "warn"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kinds[int(kind)]}"]
    return cmd


@app.command("dev")
def dev_cmd(
    demo: Annotated[bool, typer.Option(help="Load the demo ledger.")] = True,
    day_seconds: Annotated[int, typer.Option(help="Length of a policy day (demo)")] = 20,
    api: Annotated[bool, typer.Option(help="Serve the HTTP API too.")] = True,
) -> None:
    """Everything on one laptop: Temporal dev server (Web UI), worker, API, SQLite."""
    os.environ.setdefault("RELANCE_DAY_SECONDS", str(day_seconds))
    # The 2026-H2 rates were not published when the rate table was compiled, and a
    # formal notice never guesses one: the demo alone runs on labelled assumptions.
    demo_rates = Path(__file__).resolve().parent / "rules" / "data" / "demo-rates.csv"
    if demo and "RELANCE_RATES_FILE" not in os.environ:
        os.environ["RELANCE_RATES_FILE"] = str(demo_rates)
        console.print(f"[yellow]demo: late-payment rates after 2026-H1 are assumptions "
                      f"({demo_rates.name}), not published rates[/yellow]")
    get_settings.cache_clear()
    settings = _settings()
    DATA_DIR.mkdir(exist_ok=True)
    server = subprocess.Popen(temporal_dev_server_cmd(settings))
    try:
        _wait_for_port(settings.temporal_address)
        migrate(settings.database_url)
        console.print(f"Temporal Web UI: {settings.temporal_ui_url}  "
                      f"(a policy day lasts {settings.day_seconds}s)")
        asyncio.run(_dev(settings, demo, api))
    except KeyboardInterrupt:
        pass
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def _wait_for_port(address: str, timeout: float = 60) -> None:
    import socket

    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"Temporal did not start on {address}")


async def _dev(settings: Settings, demo: bool, api: bool) -> None:
    from dunning_client.start import connect, register_search_attributes
    from worker import run_worker

    client = await connect(settings)
    await register_search_attributes(client, settings.temporal_namespace)
    tasks = [asyncio.create_task(run_worker(settings))]
    if api:
        tasks.append(asyncio.create_task(_serve_api(settings)))
    if demo:
        from ledger.demo import demo_rows

        console.print(await _import(settings, demo_rows(), True))
    await asyncio.gather(*tasks)


async def _serve_api(settings: Settings) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config("api.main:app", host=settings.api_host,
                                           port=settings.api_port, log_level="info"))
    await server.serve()


@app.command("preview")
def preview_cmd(
    invoice_id: int,
    step: Annotated[str, typer.Argument(help="Policy step, e.g. reminder, mise_en_demeure")],
    channel: Annotated[str | None, typer.Option(help="email, sms or letter (default: the "
                                                "step's channel)")] = None,
    as_of: Annotated[str | None, typer.Option(help="Date of the message (YYYY-MM-DD)")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Write the step's letter PDF here")] = None,
    html: Annotated[bool, typer.Option(help="Print the email's HTML part too")] = False,
    customer: Annotated[bool, typer.Option(
        "--customer", help="The customer's combined formal notice for all of its open "
        "invoices (a letter step)")] = False,
) -> None:
    """Render any step of an invoice's policy without sending or recording anything."""
    from datetime import date

    from ledger.models import Customer, Invoice
    from rules.policy import Channel, policy_for
    from worker import build_notify

    settings = _settings()
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        invoice = session.get(Invoice, invoice_id)
        cust = session.get(Customer, invoice.customer_id) if invoice else None
    if invoice is None or cust is None:
        console.print(f"[red]invoice {invoice_id} not found[/red]")
        raise typer.Exit(2)
    policy = policy_for(cust.segment, invoice.policy_code or cust.policy_code)
    try:
        policy_step = policy.step(step)
    except KeyError as err:
        console.print(f"[red]{err.args[0]}[/red]; steps: {', '.join(s.key for s in policy.steps)}")
        raise typer.Exit(2) from None
    chosen = channel or policy_step.channel
    if chosen not in (Channel.EMAIL, Channel.SMS, Channel.LETTER):
        console.print(f"[red]step {step} is a {chosen} step: nothing to render[/red]")
        raise typer.Exit(2)
    notify = build_notify(engine, settings, providers={})
    if customer:
        if not notify.letters.has_letter(policy_step.template, cust.language):
            console.print(f"[red]step {step} has no letter: nothing to combine[/red]")
            raise typer.Exit(2)
        _preview_combined(notify, invoice_id, as_of, pdf, policy.formal_notice_deadline_days,
                          policy.recovery_indemnity)
        return
    try:
        shown = notify.preview(invoice_id, step, chosen, policy_step.template,
                               as_of=date.fromisoformat(as_of) if as_of else None,
                               deadline_days=policy.formal_notice_deadline_days,
                               recovery_indemnity=policy.recovery_indemnity)
    except Exception as err:  # a missing rate, a template error: say it plainly
        console.print(f"[red]cannot render {step}/{chosen}: {err}[/red]")
        raise typer.Exit(1) from None
    console.rule(f"{step} · {chosen} · to {shown['recipient'] or '(no recipient)'}")
    if shown["subject"]:
        console.print(f"[bold]{shown['subject']}[/bold]\n", markup=False, highlight=False)
    console.print(shown["body"], markup=False, highlight=False)
    if html and shown["html"]:
        console.rule("html")
        console.print(shown["html"], markup=False, highlight=False)
    letter = shown.get("letter")
    if letter is not None:
        if pdf is not None:
            pdf.write_bytes(letter.pdf)
            console.print(f"letter PDF written to {pdf} ({len(letter.pdf)} bytes)")
        else:
            console.print(f"(this step has a letter: --pdf FILE writes {letter.filename})")


def _preview_combined(notify: NotifyActivities, invoice_id: int, as_of: str | None,
                      pdf: Path | None, deadline_days: int, recovery_indemnity: bool) -> None:
    from datetime import date

    try:
        shown = notify.preview_combined(invoice_id, as_of=date.fromisoformat(as_of)
                                        if as_of else None, deadline_days=deadline_days,
                                        recovery_indemnity=recovery_indemnity)
    except Exception as err:  # a missing rate, a template error: say it plainly
        console.print(f"[red]cannot render the combined notice: {err}[/red]")
        raise typer.Exit(1) from None
    claim = shown["claim"]
    console.rule(f"combined formal notice · {shown['customer']} · "
                 f"{len(claim['invoices'])} open invoices")
    table = Table("invoice", "due", "still due", "days late", "interest", "indemnity", "total")
    for i in claim["invoices"]:
        table.add_row(i["number"], i["due_date"].isoformat(), _cents(i["principal_cents"]),
                      str(i["days_late"]), _cents(i["interest_cents"]),
                      _cents(i["indemnity_cents"]), _cents(i["total_cents"]))
    table.add_row("total", "", _cents(claim["principal_cents"]), "",
                  _cents(claim["interest_cents"]), _cents(claim["indemnity_cents"]),
                  _cents(claim["total_cents"]))
    console.print(table)
    letter = shown["letter"]
    if pdf is not None:
        pdf.write_bytes(letter.pdf)
        console.print(f"letter PDF written to {pdf} ({len(letter.pdf)} bytes)")
    else:
        console.print(f"(--pdf FILE writes {letter.filename})")


def _cents(cents: int) -> str:
    return f"{cents / 100:.2f}"


@app.command("letters")
def letters_cmd(
    export: Annotated[Path | None, typer.Option(help="Write the queued letters' PDFs here")] = None,
    mark_posted: Annotated[bool, typer.Option(help="Mark the exported letters posted")] = False,
) -> None:
    """Letters queued for registered post (lettre recommandée avec AR): list, export
    the print-ready PDFs, mark them posted. A customer's combined letter is one
    line naming every invoice it covers."""
    from ledger.letters import postal_queue
    from ledger.models import Customer, LetterPostalStatus

    settings = _settings()
    engine = make_engine(settings.database_url)
    table = Table("letter", "invoices", "customer", "date", "deadline", "claimed", "file")
    with Session(engine) as session:
        queued = postal_queue(session)
        # A customer marked do not contact gets no letter: held until the mark is cleared.
        held = [e for e in queued if (c := session.get(Customer, e.letter.customer_id))
                is not None and c.do_not_contact]
        queued = [e for e in queued if e not in held]
        for entry in queued:
            letter = entry.letter
            customer = session.get(Customer, letter.customer_id)
            claimed = letter.principal_cents + letter.interest_cents + letter.indemnity_cents
            path = ""
            if export is not None:
                export.mkdir(parents=True, exist_ok=True)
                target = export / f"{letter.id:06d}-{letter.filename}"
                target.write_bytes(letter.pdf)
                path = str(target)
                if mark_posted:
                    letter.postal_status = LetterPostalStatus.POSTED
                    session.add(letter)
            table.add_row(str(letter.id), ", ".join(entry.invoice_numbers) or "?",
                          customer.name if customer else "?", letter.letter_date.isoformat(),
                          letter.deadline.isoformat(), f"{claimed / 100:.2f}", path)
        session.commit()
    console.print(table)
    console.print(f"{len(queued)} letters queued for registered post"
                  + (f", {len(held)} held (customer marked do not contact)" if held else ""))


@app.command("demo")
def demo_cmd(out: Annotated[Path, typer.Option()] = Path("demo-ledger.csv")) -> None:
    """Write the demo ledger as a CSV (what `relance dev` loads)."""
    from ledger.demo import demo_csv

    out.write_text(demo_csv(), encoding="utf-8")
    console.print(f"wrote {out}")


token_app = typer.Typer(help="API bearer tokens (stored hashed).", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create_cmd(
    name: Annotated[str, typer.Option(help="Who uses it, e.g. an agent's login")],
    role: Annotated[str, typer.Option(help="agent, manager or admin")] = "agent",
) -> None:
    """Create a bearer token; it is printed once and only its hash is stored."""
    from ledger.crud import create_api_token

    settings = _settings()
    migrate(settings.database_url)
    with Session(make_engine(settings.database_url)) as session:
        try:
            row, token = create_api_token(session=session, name=name, role=role)
        except ValueError as err:
            console.print(f"[red]{err}[/red]")
            raise typer.Exit(2) from None
    console.print(f"token for {row.name} ({row.role}), shown once:")
    typer.echo(token)


@app.command("reconcile")
def reconcile_cmd() -> None:
    """Signal every committed payment Temporal has not acknowledged yet (the API
    also does this periodically)."""
    from api.payments import deliver_pending_payments
    from dunning_client.start import connect

    async def run() -> int:
        settings = _settings()
        return await deliver_pending_payments(make_engine(settings.database_url),
                                              await connect(settings))

    console.print(f"{asyncio.run(run())} pending payments delivered")


if __name__ == "__main__":
    app()
