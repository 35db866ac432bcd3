"""Per-run Postgres databases (migrated with each service's real Alembic) and a per-run RabbitMQ vhost.

URLs come from the environment with the local services as defaults:
  BITFOLIO_TEST_POSTGRES_URL  (default postgresql://postgres@127.0.0.1:5432/postgres)
  BITFOLIO_TEST_RABBIT_URL    (default amqp://guest:guest@127.0.0.1:5672/)
Testcontainers (a declared test dependency) is used only when neither is set and a Docker engine answers.
"""

import gzip
import io
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
CANDLES = ROOT / "services" / "price" / "seed" / "btc-usd-hourly-2024.csv.gz"
"""The real 2024 hourly BTC-USD candles the project bundles (the price service's seed), so a bare clone tests fully."""
RUN_ID = uuid.uuid4().hex[:10]


def open_candles() -> io.TextIOWrapper:
    """The bundled candles as CSV text (date,unix,low,high,open,close,volume,vol_fiat)."""
    return io.TextIOWrapper(gzip.open(CANDLES), encoding="utf-8", newline="")


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0


@dataclass
class PostgresServer:
    admin_url: str  # plain postgresql:// URL to a maintenance database

    def url_for(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit((driver, parts.netloc, "/" + database, "", ""))

    async def create_database(self, name: str) -> None:
        connection = await asyncpg.connect(self.admin_url)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    async def drop_database(self, name: str) -> None:
        connection = await asyncpg.connect(self.admin_url)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


def migrate(service: str, database_url: str) -> None:
    """Run the service's real Alembic migrations against `database_url`."""
    service_dir = ROOT / "services" / service
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(service_dir / "alembic.ini"), "-x", f"database_url={database_url}",
         "upgrade", "head"],
        check=True,
        cwd=service_dir,
        capture_output=True,
    )


@dataclass
class RabbitServer:
    base_url: str  # amqp URL of the default vhost
    vhost: str = "/"

    @property
    def url(self) -> str:
        parts = urlsplit(self.base_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(self.vhost, safe=""), "", ""))

    def create_vhost(self, name: str) -> None:
        user = urlsplit(self.base_url).username or "guest"
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", name, user, ".*", ".*", ".*"], check=True,
                       capture_output=True)
        self.vhost = name

    def delete_vhost(self) -> None:
        if self.vhost != "/":
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True)


def postgres_server() -> tuple[PostgresServer, object | None]:
    url = os.environ.get("BITFOLIO_TEST_POSTGRES_URL")
    if url is None and not os.environ.get("BITFOLIO_TEST_LOCAL") and docker_answers():
        from testcontainers.community.postgres import PostgresContainer  # only where Docker runs

        container = PostgresContainer("postgres:15", driver=None).start()
        return PostgresServer(container.get_connection_url()), container
    return PostgresServer(url or "postgresql://postgres@127.0.0.1:5432/postgres"), None


def rabbit_server() -> tuple[RabbitServer, object | None]:
    url = os.environ.get("BITFOLIO_TEST_RABBIT_URL")
    if url is None and not os.environ.get("BITFOLIO_TEST_LOCAL") and docker_answers():
        from testcontainers.community.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.10-management").start()
        host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
        return RabbitServer(f"amqp://guest:guest@{host}:{port}/"), container
    server = RabbitServer(url or "amqp://guest:guest@127.0.0.1:5672/")
    if shutil.which("rabbitmqctl"):
        server.create_vhost(f"bitfolio_test_{RUN_ID}")
    return server, None
