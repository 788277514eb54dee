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
    max_cached_workflows: int = 10000

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            for name in ("stripe_webhook_secret", "generic_webhook_secret"):
                if getattr(self, name) == DEFAULT_SECRET:
                    raise ValueError(f"RELANCE_{name.upper()} must be set in production")
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs RELANCE_DATABASE_URL (PostgreSQL)")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
