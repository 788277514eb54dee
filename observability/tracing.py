"""OpenTelemetry tracing across the API, the workflows and the activities.

Optional: only when `RELANCE_OTLP_ENDPOINT` is set, and then `relance[otel]`
must be installed. Temporal's TracingInterceptor on the client carries the
span context in workflow headers, so a webhook's span continues in the workflow
and in every activity it runs. The embedded mode needs none of it.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Interceptor

from settings import Settings

_configured: list[str] = []


def _require_otel() -> None:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
        import temporalio.contrib.opentelemetry  # noqa: F401
    except ImportError as err:
        raise RuntimeError("RELANCE_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
                           "pip install 'relance[otel]'") from err


def configure_tracer_provider(settings: Settings, service: str = "relance") -> None:
    """Export spans to the OTLP collector (once per process)."""
    if _configured:
        return
    _require_otel()
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=settings.otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _configured.append(service)


def tracing_interceptor() -> Interceptor:
    """Temporal's interceptor (client and worker), on the global tracer provider."""
    _require_otel()
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor()


def temporal_interceptors(settings: Settings) -> list[Interceptor]:
    if not settings.otlp_endpoint:
        return []
    configure_tracer_provider(settings)
    return [tracing_interceptor()]


def instrument_api(app: Any, settings: Settings) -> None:
    """A server span per HTTP request, parent of the Temporal calls it makes."""
    if not settings.otlp_endpoint:
        return
    configure_tracer_provider(settings, "relance-api")
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="health,metrics")
