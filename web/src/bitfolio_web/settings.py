"""Settings of the web dashboard, from WEB_* environment variables."""

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_STORAGE_SECRET = "bitfolio-web-dev-storage-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_", env_file=".env", extra="ignore")

    # prod unless told otherwise: a deployment that forgets WEB_ENV must not sign sessions with the public dev secret
    env: Literal["dev", "test", "prod"] = "prod"
    log_level: str = "INFO"
    gateway_url: str = "http://127.0.0.1:8000"
    rabbit_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    storage_secret: str = DEV_STORAGE_SECRET
    live_prefetch: int = Field(default=50, ge=1)
    """Most live updates this process holds unacknowledged at once; a burst waits in RabbitMQ."""

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "Settings":
        if self.env not in ("dev", "test") and self.storage_secret == DEV_STORAGE_SECRET:
            raise ValueError("WEB_STORAGE_SECRET is the development default; set a random secret")
        return self
