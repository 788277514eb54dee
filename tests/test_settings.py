"""Production refuses default secrets; every setting is documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from payload_codec import new_key
from settings import DEFAULT_SECRET, Settings

PG = "postgresql+psycopg://relance:pw@db:5432/relance"
GOOD = dict(environment="production", database_url=PG, codec_keys=f"k1:{new_key()}",
            codec_active_key="k1", stripe_webhook_secret="whsec_1",
            generic_webhook_secret="g-1")


@pytest.mark.parametrize("change, message", [
    ({"stripe_webhook_secret": DEFAULT_SECRET}, "RELANCE_STRIPE_WEBHOOK_SECRET must be set"),
    ({"generic_webhook_secret": DEFAULT_SECRET}, "RELANCE_GENERIC_WEBHOOK_SECRET must be set"),
    ({"database_url": "sqlite:///x.db"}, "production needs RELANCE_DATABASE_URL"),
    ({"codec_keys": ""}, "production needs RELANCE_CODEC_KEYS"),
    ({"codec_endpoint_token": DEFAULT_SECRET}, "RELANCE_CODEC_ENDPOINT_TOKEN"),
    ({"codec_keys": "k1:c2hvcnQ="}, "AES needs 16, 24 or 32"),
])
def test_production_refuses_unsafe_settings(change, message):
    with pytest.raises(ValueError, match=message):
        Settings(**{**GOOD, **change})  # type: ignore[arg-type]


def test_production_accepts_real_secrets_and_development_needs_none():
    assert Settings(**GOOD).environment == "production"  # type: ignore[arg-type]
    assert Settings(environment="development").codec_keys == ""


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = set(re.findall(r"^\| `(RELANCE_[A-Z0-9_]+)` \|", readme, re.M))
    fields = {f"RELANCE_{name.upper()}" for name in Settings.model_fields}
    assert fields - table == set(), "settings missing from the README table"
    assert table - fields == set(), "README documents settings that do not exist"
