"""A local fake of CryptoCompare's histohour API, speaking its format (SPEC), with scriptable failures."""

import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def synthetic_open(hour: int) -> Decimal:
    """A deterministic price per hour, so tests can predict what the provider returns."""
    return Decimal(20000) + Decimal(hour // 3600 % 5000) / Decimal(4)


def synthetic_close(hour: int) -> Decimal:
    return synthetic_open(hour) + 1


def _row_json(hour: int, price: Decimal, close: Decimal | None = None) -> str:
    """One histohour row; prices are JSON numbers, as the real API sends them."""
    if price == 0:
        return f'{{"time": {hour}, "open": 0, "high": 0, "low": 0, "close": 0, "volumefrom": 0, "volumeto": 0}}'
    close = price + 1 if close is None else close
    return (f'{{"time": {hour}, "open": {price}, "high": {max(price + 10, close)}, "low": {min(price - 10, close)}, '
            f'"close": {close}, "volumefrom": 12.5, "volumeto": 250000.0}}')


@dataclass
class FakeCryptoCompare:
    first_real_hour: int = 0
    """Hours before this come back as all-zero rows, as for times before the pair existed."""
    fail_with_429: int = 0
    """Answer this many requests with HTTP 429 before succeeding."""
    error_message: str | None = None
    """When set, answer {"Response": "Error", "Message": ...}."""
    unreadable_answers: int = 0
    """Answer this many requests with `unreadable_body` (HTTP 200) before answering properly."""
    unreadable_body: str = "<html>upstream hiccup</html>"
    closes: dict[int, Decimal] = field(default_factory=dict)
    """A close per hour that differs from the synthetic one (an hour still trading, or one that moved since)."""
    hold: threading.Event | None = None
    """When set, every request waits until this event is set (a provider that hangs)."""
    requests: list[dict[str, str]] = field(default_factory=list)

    def page(self, to_ts: int, limit: int) -> str:
        to_hour = to_ts - to_ts % 3600
        hours = [to_hour - 3600 * i for i in range(limit, -1, -1)]
        rows = ", ".join(_row_json(h, synthetic_open(h) if h >= self.first_real_hour else Decimal(0), self.closes.get(h))
                         for h in hours)
        return (f'{{"Response": "Success", "Data": {{"Aggregated": false, "TimeFrom": {hours[0]}, '
                f'"TimeTo": {hours[-1]}, "Data": [{rows}]}}}}')

    def start(self) -> "RunningFake":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append(query)
                if fake.hold is not None:
                    fake.hold.wait(30)
                if url.path != "/data/v2/histohour":
                    self._send(404, json.dumps({"Response": "Error", "Message": "unknown path"}))
                elif fake.fail_with_429 > 0:
                    fake.fail_with_429 -= 1
                    self._send(429, json.dumps({"Response": "Error", "Message": "rate limit"}))
                elif fake.unreadable_answers > 0:
                    fake.unreadable_answers -= 1
                    self._send(200, fake.unreadable_body)
                elif fake.error_message is not None:
                    self._send(200, json.dumps({"Response": "Error", "Message": fake.error_message}))
                else:
                    self._send(200, fake.page(int(query["toTs"]), int(query.get("limit", 2000))))

            def _send(self, status: int, body: str) -> None:
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return RunningFake(fake, server)


@dataclass
class RunningFake:
    fake: FakeCryptoCompare
    server: ThreadingHTTPServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
