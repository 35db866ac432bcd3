"""Every request's correlation id, log context and metrics, as a pure ASGI middleware (no per-request task)."""

import random
import time

from contracts.observability import bind_correlation
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("gateway_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("gateway_request_seconds", "HTTP request latency", ["route"],
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
CORRELATION_HEADER = b"x-correlation-id"


class ObserveMiddleware:
    """Takes X-Correlation-Id (or makes one), binds it to the logs, returns it, and counts and times the request
    under its route's template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # prometheus_client looks a label set up under a lock each time; the children are kept here instead
        self.latency: dict[str, Histogram] = {}
        self.requests: dict[tuple[str, str, int], Counter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        correlation = next((value.decode("latin-1") for name, value in scope["headers"] if name == CORRELATION_HEADER),
                           None) or f"{random.getrandbits(128):032x}"
        bind_correlation(correlation, path=scope["path"])
        started = time.perf_counter()
        status = 0

        async def send_with_correlation(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-correlation-id", correlation.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_correlation)
        route = getattr(scope.get("route"), "path", "unmatched")
        latency = self.latency.get(route)
        if latency is None:
            latency = self.latency[route] = LATENCY.labels(route)
        latency.observe(time.perf_counter() - started)
        key = (scope["method"], route, status)
        requests = self.requests.get(key)
        if requests is None:
            requests = self.requests[key] = REQUESTS.labels(*key)
        requests.inc()
