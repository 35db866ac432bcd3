"""Settings of the price service, from PRICE_* environment variables."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRICE_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    log_level: str = "INFO"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/bitfolio_price"
    rabbit_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    http_host: str = "127.0.0.1"
    http_port: int = 8001

    provider_base_url: str = "https://min-api.cryptocompare.com"
    provider_api_key: str | None = None
    provider_attempts: int = 4
    provider_backoff_seconds: float = 0.5
    provider_timeout_seconds: float = 10.0

    consumer_prefetch: int = Field(default=16, ge=1)
    """Most unacknowledged messages each consumer holds: a burst waits in RabbitMQ, not in this process."""
    consumer_max_attempts: int = Field(default=3, ge=1)
    """Tries at a message that fails unexpectedly before it goes to the dead-letter queue with the reason."""

    outbox_poll_seconds: float = Field(default=2.0, gt=0)
    """How often the relay looks for outbox rows another process wrote (an import's tick, another copy's); the
    rows this process writes leave at once."""

    sync_enabled: bool = True
    sync_interval_seconds: float = 3600.0
    range_cap_hours: int = 5000
    """Most candles one HTTP range query returns; longer ranges are refused with 422."""

    @property
    def asyncpg_dsn(self) -> str:
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
