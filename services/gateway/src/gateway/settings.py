"""Settings of the gateway, from GATEWAY_* environment variables; unsafe secrets stop it outside dev/test."""

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "bitfolio-dev-only-signing-key-change-me-0123456789"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    # prod unless told otherwise: a deployment that forgets GATEWAY_ENV must not accept the public dev secret
    env: Literal["dev", "test", "prod"] = "prod"
    log_level: str = "INFO"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/bitfolio_gateway"
    rabbit_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    cors_origins: list[str] = ["http://127.0.0.1:8080", "http://localhost:8080"]

    jwt_secret: str = DEV_SECRET
    jwt_issuer: str = "bitfolio-gateway"
    jwt_audience: str = "bitfolio-api"
    access_token_seconds: int = 900
    refresh_token_days: int = 30

    request_timeout_seconds: float = 10.0
    reply_prefetch: int = Field(default=200, ge=1)
    """Most replies this process holds unacknowledged at once; a burst waits in RabbitMQ."""
    failed_logins_per_account_and_address: int = 5
    failed_logins_per_ip: int = 20
    failed_login_window_seconds: int = 900
    requests_per_minute: int = 1200
    registrations_per_ip_per_hour: int = 20
    token_requests_per_ip_per_minute: int = 60
    """Refresh and demo logins from one address."""
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]
    """Addresses or networks (CIDR) whose X-Forwarded-For is believed, such as the web dashboard's."""

    password_hashing_threads: int = Field(default=2, ge=1, le=64)
    """Argon2 runs in worker threads; at most this many at once, so a burst of logins cannot take every core."""

    idempotency_hours: int = 24
    idempotency_lease_seconds: float = 60.0
    """How long a request holds its Idempotency-Key before a stalled holder (a crashed gateway) is overtaken."""

    demo_email: str = "demo@bitfolio.local"

    read_model_capacity: int = Field(default=100_000, ge=1)
    """Portfolios the read model holds (least recently used go first); about 1.5 KB each (docs/architecture.md)."""
    read_your_writes_wait_seconds: float = Field(default=0.25, ge=0)
    """How long a read right after a write waits for the write's portfolio.updated before it asks the service."""
    feed_prefetch: int = Field(default=500, ge=1)
    """Events of this copy's own queue held unacknowledged at once."""
    revocation_sync_seconds: float = Field(default=5.0, gt=0)
    """Every copy reads the ended tokens from the database this often, beside the access.revoked events: the
    longest a revoked token can still be accepted by a copy that missed the event."""

    @model_validator(mode="after")
    def _refuse_unsafe_secrets(self) -> "Settings":
        if self.env not in ("dev", "test"):
            if self.jwt_secret == DEV_SECRET:
                raise ValueError("GATEWAY_JWT_SECRET is the development default; set a random secret of 32+ bytes")
            if len(self.jwt_secret.encode()) < 32:
                raise ValueError("GATEWAY_JWT_SECRET is shorter than 32 bytes; set a random secret of 32+ bytes")
        return self

    @property
    def asyncpg_dsn(self) -> str:
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
