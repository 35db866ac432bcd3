"""Settings of the portfolio service, from PORTFOLIO_* environment variables."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTFOLIO_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    log_level: str = "INFO"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/bitfolio_portfolio"
    rabbit_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    http_host: str = "127.0.0.1"
    http_port: int = 8002
    price_timeout_seconds: float = 10.0
    consumer_prefetch: int = Field(default=100, ge=1)
    """Most unacknowledged messages each consumer holds: a burst waits in RabbitMQ, not in this process."""
    consumer_max_attempts: int = Field(default=3, ge=1)
    """Tries at a message that fails unexpectedly before it goes to the dead-letter queue with the reason."""
    write_batch_limit: int = 100
    """The most messages handled in one database transaction."""
    write_lanes: int = Field(default=1, ge=1)
    """Batches run side by side, each over its own portfolios (a portfolio always goes to the same lane). One lane
    makes the larger batches: with 32 users recording on two cores, 10–15 % less CPU a trade than two (Postgres
    above all: fewer BEGIN, inbox, lock, price, write and COMMIT statements a trade), at a higher rate."""
    write_linger_seconds: float = Field(default=0.1, ge=0, le=2)
    """A price answer that follows another of its portfolio within this time waits for more, so that a burst is
    applied in one fold of the ledger (a lone answer never waits): the shortest window of answers."""
    write_coalesce_seconds: float = Field(default=2.0, ge=0, le=10)
    """The longest window: one grows with the time its portfolio's answers take to fold (WINDOW_PER_FOLD)."""

    price_replica: bool = True
    """Price a trade at an hour whose candle has ended from this service's replica of the hourly opens (fetched
    from the price service over price.range) as it is recorded: one transaction and one portfolio.updated a trade,
    no price.requested and answer. False: every market-priced trade is priced through price.requested."""

    price_request_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    """Price requests leave at most once in this time: those committed meanwhile wait for the end of it and leave
    as one message, answered by one (a lone request waits for nothing; 0: each batch's at once)."""

    @property
    def asyncpg_dsn(self) -> str:
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
