"""Session fixtures shared by every test layer: a per-run vhost and per-run migrated databases."""

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.infrastructure import (
    CANDLES,
    RUN_ID,
    PostgresServer,
    RabbitServer,
    migrate,
    postgres_server,
    rabbit_server,
)

LAYERS = ("unit", "integration", "e2e", "web", "faults")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its layer (its folder under tests/) and run the fault suite last."""
    for item in items:
        parts = Path(str(item.path)).parts
        for layer in LAYERS:
            if layer in parts:
                item.add_marker(getattr(pytest.mark, layer))
    items.sort(key=lambda item: LAYERS.index(next((m.name for m in item.iter_markers() if m.name in LAYERS), "unit")))


@pytest.fixture(scope="session")
def shared_candles_csv() -> Path:
    """The 2024 candles the project bundles (.csv.gz, which the price CLI's import reads), shared by every layer."""
    assert CANDLES.exists(), f"the bundled 2024 candles are missing ({CANDLES})"
    return CANDLES


@pytest.fixture(scope="session")
def rabbit() -> Iterator[RabbitServer]:
    server, container = rabbit_server()
    yield server
    server.delete_vhost()
    if container is not None:
        container.stop()


@pytest.fixture(scope="session")
def rabbit_url(rabbit: RabbitServer) -> str:
    return rabbit.url


@pytest.fixture(scope="session")
def make_vhost(rabbit: RabbitServer) -> Iterator[Callable[[str], str]]:
    """Factory: `make_vhost("price")` gives a URL of a fresh vhost, so running services never share queues."""
    created: list[RabbitServer] = []

    def create(purpose: str) -> str:
        if rabbit.vhost == "/":
            return rabbit.url  # a broker we cannot administer: share its default vhost
        server = RabbitServer(rabbit.base_url)
        server.create_vhost(f"bitfolio_test_{RUN_ID}_{purpose}_{len(created)}")
        created.append(server)
        return server.url

    yield create
    for server in created:
        server.delete_vhost()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server, container = postgres_server()
    yield server
    if container is not None:
        container.stop()


@pytest.fixture(scope="session")
async def make_database(postgres: PostgresServer) -> AsyncIterator[Callable[..., object]]:
    """Factory: `await make_database("price")` creates bitfolio_price_t<run>_<n>, migrates it, returns its URL."""
    created: list[str] = []

    async def create(service: str, *, migrated: bool = True) -> str:
        name = f"bitfolio_{service}_t{RUN_ID}_{len(created)}"
        await postgres.create_database(name)
        created.append(name)
        url = postgres.url_for(name)
        if migrated:
            migrate(service, url)
        return url

    yield create
    for name in created:
        await postgres.drop_database(name)
