"""Relance settings, read from the environment (prefix RELANCE_) or a .env file.

Defaults are the embedded mode: SQLite in ./.relance, a local Temporal dev server,
the outbox provider. Production mode refuses to start with a default secret.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me"
DATA_DIR = Path(".relance")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELANCE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"

    database_url: str = f"sqlite:///{DATA_DIR / 'relance.db'}"

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "relance-dunning"
    temporal_ui_url: str = "http://127.0.0.1:8233"

    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # Length of one policy "day". 86400 is the real calendar (business days and
    # sending hours apply); a few seconds compresses a 38-day cycle for demos.
    day_seconds: int = 86400
    # Hour (local time of the customer) at which a day's messages go out.
    send_hour: int = 9
    # Sending hours in the customer's time zone, Mon-Fri outside public holidays
    # (rules.calendar.parse_windows format). Email: any hour of a business day.
    sms_hours: str = "09:00-20:00"
    call_hours_b2b: str = "09:00-12:30,14:00-18:00"
    call_hours_b2c: str = "10:00-13:00,14:00-20:00"
    default_country: str = "FR"
    default_timezone: str = "Europe/Paris"
    default_language: str = "fr"
    # Grouping: a queued message waits this long for the customer's other invoices
    # of the same sending window (the business day) before one message goes out.
    group_gather_seconds: int = 600

    # Channels: "outbox" stores every message in the database and marks it sent.
    email_provider: Literal["outbox", "sendgrid"] = "outbox"
    sms_provider: Literal["outbox", "twilio"] = "outbox"
    sendgrid_api_key: str = ""
    sendgrid_base_url: str = "https://api.sendgrid.com"
    email_from: str = "relance@example.com"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_base_url: str = ""
    sms_from: str = "+33100000000"
    email_from_name: str = ""
    # Replies to dunning emails go here (default: company_email).
    email_reply_to: str = ""
    # Public URL of this API, for provider callbacks (Twilio status callback).
    public_base_url: str = ""
    # SendGrid Event Webhook verification key (the public key SendGrid shows).
    sendgrid_webhook_public_key: str = ""

    # Webhook secrets, one per gateway.
    stripe_webhook_secret: str = DEFAULT_SECRET
    generic_webhook_secret: str = DEFAULT_SECRET
    # Seconds a signed webhook stays acceptable (replay protection).
    webhook_tolerance_seconds: int = 300
    # How often the API re-signals payments Temporal did not get (0: never).
    reconcile_interval_seconds: int = 30
    # Deadline of one call to Temporal from an HTTP request.
    temporal_rpc_timeout_seconds: float = 5.0

    # Creditor identity printed on messages and the formal notice.
    company_name: str = "Relance Demo SAS"
    company_address: str = "1 rue de la Paix, 75002 Paris"
    company_email: str = "compta@example.com"
    company_phone: str = "+33 1 00 00 00 00"
    company_iban: str = "FR76 3000 6000 0112 3456 7890 189"
    pay_url_template: str = ""
    # Place printed on the mise en demeure ("Paris, le ...") and who signs it.
    company_city: str = "Paris"
    company_signatory: str = "Service comptabilité clients"
    company_legal_id: str = "SIREN 000 000 000"

    # A company's own templates (same layout as templates/), searched first.
    templates_dir: str = ""

    # Late-payment rates: an administrator's CSV (same columns as
    # rules/data/rates.csv) adding or correcting half-years without a release.
    rates_file: str = ""

    # Worker tuning.
    max_concurrent_workflow_tasks: int = 200
    max_concurrent_activities: int = 100
    # Sticky cache: a cached invoice workflow costs about 180 KB in the worker; a
    # waiting invoice need not stay cached (it replays its short history when its
    # timer fires). 500 keeps a worker holding 10,000 invoices near 200 MB.
    max_cached_workflows: int = 500

    def gather_seconds(self) -> int:
        """The gathering delay, never more than a quarter of a (compressed) day."""
        return max(0, min(self.group_gather_seconds, self.day_seconds // 4))

    # TLS to Temporal (mTLS with a client certificate, or an API key for Temporal Cloud).
    temporal_tls: bool = False
    temporal_tls_ca_path: str = ""
    temporal_tls_cert_path: str = ""
    temporal_tls_key_path: str = ""
    temporal_api_key: str = ""

    # Payload encryption (payload_codec.py): "kid1:base64key,kid2:base64key". The
    # active key encrypts; every key of the ring decrypts, so rotation keeps old
    # histories readable. Empty: payloads are not encrypted (embedded mode only).
    codec_keys: str = ""
    codec_active_key: str = ""
    # Bearer token the Temporal Web UI sends to /codec/decode ("" disables the endpoint).
    codec_endpoint_token: str = ""

    # Observability: JSON logs, Prometheus endpoints of the worker, OTLP tracing.
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Port of the worker's /metrics (Relance counters); 0 disables it.
    worker_metrics_port: int = 0
    # host:port where the Temporal SDK serves its own Prometheus metrics; "" disables.
    temporal_metrics_address: str = ""
    # OTLP/gRPC collector (e.g. http://otel-collector:4317); needs `relance[otel]`.
    otlp_endpoint: str = ""

    # Retention: `relance purge` anonymises closed invoices older than this.
    retention_days: int = 3650

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            for name in ("stripe_webhook_secret", "generic_webhook_secret"):
                if getattr(self, name) == DEFAULT_SECRET:
                    raise ValueError(f"RELANCE_{name.upper()} must be set in production")
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs RELANCE_DATABASE_URL (PostgreSQL)")
            if not self.codec_keys:
                raise ValueError("production needs RELANCE_CODEC_KEYS: customer data must be "
                                 "encrypted in Temporal's history")
            if self.codec_endpoint_token == DEFAULT_SECRET:
                raise ValueError("RELANCE_CODEC_ENDPOINT_TOKEN must not be the default secret")
        return self

    @model_validator(mode="after")
    def _check_codec_keys(self) -> Settings:
        from payload_codec import codec_from_key_spec

        # Fails at start-up on a malformed ring or an active key that is not in it.
        codec_from_key_spec(self.codec_keys, self.codec_active_key)
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
