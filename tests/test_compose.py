"""The compose file and the Dockerfile, checked against what the app really has:
its Typer commands, its Settings fields, its dependencies. (No Docker engine runs
on the CI machine; this is what can be checked without one.)"""

from __future__ import annotations

import base64
import os
import re
import tomllib
from pathlib import Path

import pytest
import typer
import yaml

from cli import app
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
RELANCE = {name: svc for name, svc in SERVICES.items()
           if svc["image"].split(":")[0] == "relance"}
SETTING_NAMES = {f"RELANCE_{name.upper()}" for name in Settings.model_fields}
COMMANDS = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def test_relance_services_run_existing_commands():
    assert set(RELANCE) == {"migrate", "temporal-setup", "api", "worker"}
    for name, svc in RELANCE.items():
        assert svc["command"][0] in COMMANDS, f"{name}: relance {svc['command'][0]}?"
    assert RELANCE["migrate"]["command"] == ["migrate"]
    assert RELANCE["api"]["command"] == ["api"]
    assert RELANCE["worker"]["command"] == ["worker"]
    assert RELANCE["temporal-setup"]["command"] == ["setup-temporal"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["relance"]' in dockerfile


def test_images_are_pinned():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, svc in SERVICES.items():
        image, _, tag = svc["image"].partition(":")
        assert tag and tag != "latest" and re.match(r"\d", tag), f"{name}: {svc['image']}"
    assert {s["image"].split(":")[0] for s in SERVICES.values()} >= {
        "postgres", "temporalio/auto-setup", "temporalio/ui", "relance"}
    assert {svc["image"] for svc in RELANCE.values()} == {f"relance:{version}"}


def test_relance_environment_names_are_settings():
    for name, svc in RELANCE.items():
        unknown = set(svc["environment"]) - SETTING_NAMES
        assert not unknown, f"{name} sets variables Settings does not read: {unknown}"
    referenced = {m[0] for m in VARIABLE.findall((ROOT / "docker-compose.yml").read_text())}
    relance_refs = {v for v in referenced if v.startswith("RELANCE_")}
    assert relance_refs <= SETTING_NAMES, relance_refs - SETTING_NAMES
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if "=" in line and not line.startswith("#")}
    required = {v for v in referenced
                if re.search(r"\$\{" + v + r":\?", (ROOT / "docker-compose.yml").read_text())}
    assert required <= example, f"secrets missing from .env.example: {required - example}"


def resolved(env: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """Compose's interpolation: ${X}, ${X:-default}, ${X:?error}."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.groups()
        if secrets.get(name):
            return secrets[name]
        if op == "?":
            raise AssertionError(f"compose would refuse to start: {arg}")
        return arg or ""

    return {k: VARIABLE.sub(one, str(v)).replace("$$", "$") for k, v in env.items()}


@pytest.mark.parametrize("service", ["api", "worker", "migrate", "temporal-setup"])
def test_compose_environment_is_a_valid_production_configuration(service, monkeypatch):
    secrets = {"POSTGRES_PASSWORD": "pw", "RELANCE_CODEC_ACTIVE_KEY": "k1",
               "RELANCE_CODEC_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
               "RELANCE_STRIPE_WEBHOOK_SECRET": "whsec_x", "RELANCE_GENERIC_WEBHOOK_SECRET": "g"}
    env = resolved(RELANCE[service]["environment"], secrets)
    for secret in secrets:  # each secret is required: compose itself refuses to start
        with pytest.raises(AssertionError, match="compose would refuse"):
            resolved(RELANCE[service]["environment"],
                     {k: v for k, v in secrets.items() if k != secret})
    for key in list(os.environ):
        if key.startswith("RELANCE_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql+psycopg://relance:pw@postgresql:5432/")
    assert settings.temporal_address == "temporal:7233"
    # Without the codec keys the same configuration is refused.
    monkeypatch.setenv("RELANCE_CODEC_KEYS", "")
    with pytest.raises(ValueError, match="RELANCE_CODEC_KEYS"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_ports_health_checks_and_start_order():
    api, worker = RELANCE["api"], RELANCE["worker"]
    assert api["ports"] == [f"{api['environment']['RELANCE_API_PORT']}:8000"]
    assert "8000" in api["healthcheck"]["test"][-1] and "/health/ready" in api[
        "healthcheck"]["test"][-1]
    # Scalable: no fixed container name, no host port; metrics ports exposed inside.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["expose"] == [worker["environment"]["RELANCE_WORKER_METRICS_PORT"],
                                worker["environment"]["RELANCE_TEMPORAL_METRICS_ADDRESS"]
                                .rsplit(":", 1)[1]]
    for name in ("api", "worker"):
        deps = RELANCE[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["temporal-setup"]["condition"] == "service_completed_successfully"
    for name, svc in SERVICES.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{dep} has no health check"
    for one_shot in ("migrate", "temporal-setup"):
        assert RELANCE[one_shot]["restart"] == "no"
    assert SERVICES["temporal"]["environment"]["DB"] == "postgres12"
    assert SERVICES["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgresql"
    ui = SERVICES["temporal-ui"]["environment"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")


def test_volumes_are_declared():
    declared = set(COMPOSE.get("volumes") or {})
    used = {v.split(":", 1)[0] for svc in SERVICES.values() for v in svc.get("volumes", [])}
    assert used == declared == {"pgdata"}
    assert "pgdata:/var/lib/postgresql/data" in SERVICES["postgresql"]["volumes"]


def test_dockerfile_is_small_non_root_and_locked():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["python:3.11-slim",
                                                             "python:3.11-slim"]
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "-r /tmp/requirements.lock" in dockerfile and "--no-deps" in dockerfile
    lock = [line for line in (ROOT / "requirements.lock").read_text().splitlines()
            if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.+\-]+", line) for line in lock), lock
    locked = {line.split("==")[0].lower().replace("_", "-") for line in lock}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["postgres"]
    for requirement in wanted:
        name = re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in locked, f"{name} is not in requirements.lock"
    for source in ("cli.py", "settings.py", "worker.py", "payload_codec.py", "templates",
                   "migrations", "observability", "workflows", "activities", "api", "ledger",
                   "rules"):
        assert re.search(rf"^COPY {re.escape(source)} ", dockerfile, re.M) or re.search(
            rf"^COPY .*\b{re.escape(source)}\b", dockerfile, re.M), source
