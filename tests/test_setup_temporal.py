"""`relance setup-temporal` (the compose file's one-shot) on a fresh namespace."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from typer.testing import CliRunner

from cli import app
from dunning_client.start import SEARCH_ATTRIBUTES
from settings import get_settings


async def test_setup_temporal_registers_search_attributes(dev_env, monkeypatch):
    namespace = f"relance-{uuid.uuid4().hex[:8]}"
    await dev_env.client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=namespace, workflow_execution_retention_period=Duration(
            seconds=int(timedelta(days=1).total_seconds()))))
    before = await dev_env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    assert not set(SEARCH_ATTRIBUTES) & set(before.custom_attributes)
    monkeypatch.setenv("RELANCE_TEMPORAL_ADDRESS",
                       dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("RELANCE_TEMPORAL_NAMESPACE", namespace)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        first = await asyncio.to_thread(runner.invoke, app, ["setup-temporal", "--wait", "30"])
        again = await asyncio.to_thread(runner.invoke, app, ["setup-temporal", "--wait", "30"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output  # idempotent
    known = await dev_env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    assert {name: known.custom_attributes[name] for name in SEARCH_ATTRIBUTES} == \
        SEARCH_ATTRIBUTES


async def test_setup_temporal_gives_up_with_a_clear_error(monkeypatch):
    from tests.ports import free_port

    monkeypatch.setenv("RELANCE_TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, app,
                                         ["setup-temporal", "--wait", "0"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "Temporal at 127.0.0.1:" in " ".join(result.output.split())
