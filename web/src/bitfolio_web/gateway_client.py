"""The dashboard's only way to the data: the gateway's HTTP API, with silent access-token refresh."""

import asyncio
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx
import structlog

log = structlog.get_logger()


@dataclass
class GatewayError(Exception):
    status: int
    code: str
    message: str
    details: Any = None

    def __str__(self) -> str:
        return self.message

    def field_messages(self) -> dict[str, str]:
        """Messages by field (email, password, amount_btc …) for showing next to inputs."""
        found: dict[str, str] = {}
        if isinstance(self.details, list):
            for item in self.details:
                if isinstance(item, dict) and item.get("field"):
                    found[str(item["field"]).split(".")[-1]] = str(item.get("message"))
        elif isinstance(self.details, dict) and self.details.get("field"):
            found[str(self.details["field"])] = self.message
        return found


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class UserAction:
    """One thing the user asked for (a dialog's Save, a Delete click): its writes share one Idempotency-Key.

    Retrying the action with the same request reuses the key, so the gateway applies it once; a changed
    request (the user corrected a field the gateway refused) gets a fresh key, since the same key with another
    body is refused as a conflict.
    """

    key: str = field(default_factory=lambda: str(uuid4()))
    _sent: Any = None

    def key_for(self, request: Any) -> str:
        if self._sent is not None and request != self._sent:
            self.key = str(uuid4())
        self._sent = request
        return self.key


def _error(response: httpx.Response) -> GatewayError:
    try:
        error = response.json()["error"]
        return GatewayError(response.status_code, error["code"], error["message"], error.get("details"))
    except (ValueError, KeyError, TypeError):
        return GatewayError(response.status_code, "unavailable", "The server answered unexpectedly; try again.")


class GatewayClient:
    """A view of one browser session; tokens live in the session's `app.storage.user`, never in URLs.

    `refresh_lock` must be the same lock for every client of one session: refresh tokens rotate and a second use
    of one counts as theft (the gateway logs the session out), so only one request may refresh at a time.
    """

    def __init__(self, base_url: str, storage: MutableMapping[str, Any], http: httpx.AsyncClient,
                 refresh_lock: asyncio.Lock | None = None, browser_address: str | None = None) -> None:
        self.base_url, self.storage, self.http = base_url.rstrip("/"), storage, http
        self.refresh_lock = refresh_lock or asyncio.Lock()
        self.browser_address = browser_address
        """The visitor's address, sent as X-Forwarded-For: the gateway trusts it from the dashboard and counts
        failed logins and sign-ups per visitor, not for every dashboard user at once."""

    @property
    def logged_in(self) -> bool:
        return bool(self.storage.get("access_token"))

    def _remember(self, tokens: dict[str, Any]) -> None:
        self.storage["access_token"] = tokens["access_token"]
        self.storage["refresh_token"] = tokens["refresh_token"]

    def forget(self) -> None:
        for key in ("access_token", "refresh_token", "user"):
            self.storage.pop(key, None)

    async def _send(self, method: str, path: str, auth: bool = True, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.browser_address:
            headers["X-Forwarded-For"] = self.browser_address
        if auth and self.storage.get("access_token"):
            headers["Authorization"] = f"Bearer {self.storage['access_token']}"
        try:
            try:
                return await self.http.request(method, self.base_url + path, headers=headers, **kwargs)
            except httpx.RemoteProtocolError:
                # A half-closed keep-alive connection: safe to send once more when a repeat cannot apply twice.
                if method in WRITE_METHODS and "Idempotency-Key" not in headers:
                    raise
                return await self.http.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.HTTPError as error:
            log.warning("gateway_unreachable", path=path, error=repr(error))
            raise GatewayError(503, "unavailable", "The Bitfolio server cannot be reached right now.") from error

    async def _refresh(self, rejected_access_token: str | None) -> bool:
        """Renew the tokens once per expiry, however many requests met it; False when the session is over."""
        async with self.refresh_lock:
            current = self.storage.get("access_token")
            if current and current != rejected_access_token:
                return True  # another request of this session refreshed while this one waited
            refresh_token = self.storage.get("refresh_token")
            if not refresh_token:
                return False
            refreshed = await self._send("POST", "/v1/auth/refresh", auth=False,
                                         json={"refresh_token": refresh_token})
            if refreshed.status_code != 200:
                self.forget()
                return False
            self._remember(refreshed.json())
            return True

    async def request(self, method: str, path: str, auth: bool = True, action: UserAction | None = None,
                      **kwargs: Any) -> httpx.Response:
        if method in WRITE_METHODS and auth:  # the gateway scopes keys by user; sign-in has none yet
            action = action or UserAction()
            fingerprint = (method, path, kwargs.get("json"), kwargs.get("params"), kwargs.get("files"))
            kwargs["headers"] = {**kwargs.get("headers", {}), "Idempotency-Key": action.key_for(fingerprint)}
        access_token = self.storage.get("access_token")
        response = await self._send(method, path, auth, **kwargs)
        if response.status_code == 401 and auth and self.storage.get("refresh_token"):
            if await self._refresh(access_token):
                response = await self._send(method, path, auth, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        return response.json() if response.content else None

    # ---------------------------------------------------------------- accounts
    async def login(self, email: str, password: str) -> None:
        self._remember(await self.json("POST", "/v1/auth/login", auth=False,
                                       json={"email": email, "password": password}))
        self.storage["user"] = await self.json("GET", "/v1/me")

    async def register(self, email: str, password: str) -> None:
        await self.json("POST", "/v1/auth/register", auth=False, json={"email": email, "password": password})
        await self.login(email, password)

    async def demo(self) -> None:
        self._remember(await self.json("POST", "/v1/auth/demo", auth=False))
        self.storage["user"] = await self.json("GET", "/v1/me")

    async def logout(self) -> None:
        try:
            await self.request("POST", "/v1/auth/logout", json={"refresh_token": self.storage.get("refresh_token")})
        except GatewayError:
            pass
        self.forget()

    # ---------------------------------------------------------------- portfolios and transactions
    async def portfolios(self) -> list[dict[str, Any]]:
        return await self.json("GET", "/v1/portfolios", params={"limit": 500})  # type: ignore[no-any-return]

    async def portfolios_after(self, portfolio_id: str | None, version: int | None) -> list[dict[str, Any]]:
        """The portfolios, with `portfolio_id` at `version` or later: the page heard of that version, and the
        gateway's copy of the list may not have it yet (that one portfolio is then asked for at that version)."""
        items = await self.portfolios()
        for index, item in enumerate(items):
            if item["portfolio_id"] == portfolio_id and version is not None and item["version"] < version:
                items[index] = await self.portfolio(portfolio_id, version)
        return items

    async def portfolio(self, portfolio_id: str, at_least: int | None = None) -> dict[str, Any]:
        """The portfolio; `at_least` a version this page has heard of (the gateway's copy may not have it yet)."""
        path = f"/v1/portfolios/{portfolio_id}" + (f"?min_version={at_least}" if at_least else "")
        return await self.json("GET", path)  # type: ignore[no-any-return]

    async def create_portfolio(self, name: str, goal_usd: str | None, method: str,
                               action: UserAction | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "cost_basis_method": method}
        if goal_usd:
            body["goal_usd"] = goal_usd
        return await self.json("POST", "/v1/portfolios", json=body, action=action)  # type: ignore[no-any-return]

    async def update_portfolio(self, portfolio_id: str, action: UserAction | None = None,
                               **changes: Any) -> dict[str, Any]:
        return await self.json("PATCH", f"/v1/portfolios/{portfolio_id}", json=changes,  # type: ignore[no-any-return]
                               action=action)

    async def delete_portfolio(self, portfolio_id: str, action: UserAction | None = None) -> None:
        await self.request("DELETE", f"/v1/portfolios/{portfolio_id}", action=action)

    async def transactions(self, portfolio_id: str, limit: int = 200) -> list[dict[str, Any]]:
        return await self.json("GET", f"/v1/portfolios/{portfolio_id}/transactions",  # type: ignore[no-any-return]
                               params={"limit": limit})

    async def record(self, portfolio_id: str, body: dict[str, Any], action: UserAction | None = None) -> dict[str, Any]:
        return await self.json("POST", f"/v1/portfolios/{portfolio_id}/transactions",  # type: ignore[no-any-return]
                               json=body, action=action)

    async def edit(self, portfolio_id: str, transaction_id: str, body: dict[str, Any],
                   action: UserAction | None = None) -> dict[str, Any]:
        return await self.json("PATCH", f"/v1/portfolios/{portfolio_id}/transactions/{transaction_id}",  # type: ignore[no-any-return]
                               json=body, action=action)

    async def delete_transaction(self, portfolio_id: str, transaction_id: str, action: UserAction | None = None) -> None:
        await self.request("DELETE", f"/v1/portfolios/{portfolio_id}/transactions/{transaction_id}", action=action)

    async def transfer(self, portfolio_id: str, body: dict[str, Any], action: UserAction | None = None
                       ) -> dict[str, Any]:
        return await self.json("POST", f"/v1/portfolios/{portfolio_id}/transfers",  # type: ignore[no-any-return]
                               json=body, action=action)

    async def edit_transfer(self, portfolio_id: str, transfer_id: str, body: dict[str, Any],
                            action: UserAction | None = None) -> dict[str, Any]:
        return await self.json("PATCH", f"/v1/portfolios/{portfolio_id}/transfers/{transfer_id}",  # type: ignore[no-any-return]
                               json=body, action=action)

    async def history(self, portfolio_id: str, start: str | None, interval: str) -> dict[str, Any]:
        params = {"interval": interval, **({"start": start} if start else {})}
        return await self.json("GET", f"/v1/portfolios/{portfolio_id}/history",  # type: ignore[no-any-return]
                               params=params)

    async def latest_price(self) -> dict[str, Any] | None:
        """The latest BTC price and the time it is valid at; None while the server has no price yet."""
        try:
            return await self.json("GET", "/v1/prices/latest")  # type: ignore[no-any-return]
        except GatewayError as error:
            if error.status == 404:
                return None
            raise

    async def import_csv(self, portfolio_id: str, name: str, content: bytes, dry_run: bool,
                         skip_invalid: bool = False, action: UserAction | None = None) -> dict[str, Any]:
        return await self.json("POST", f"/v1/portfolios/{portfolio_id}/transactions/import",  # type: ignore[no-any-return]
                               params={"dry_run": str(dry_run).lower(), "skip_invalid": str(skip_invalid).lower()},
                               files={"file": (name, content, "text/csv")}, action=action)

    async def download(self, path: str, params: dict[str, Any], fallback_name: str) -> tuple[str, bytes]:
        """A file the gateway serves as an attachment: its name and its bytes."""
        response = await self.request("GET", path, params=params)
        disposition = response.headers.get("content-disposition", "")
        filename = disposition.split("filename=")[-1].strip('"') or fallback_name
        return filename, response.content

    async def export_csv(self, portfolio_id: str) -> tuple[str, bytes]:
        return await self.download(f"/v1/portfolios/{portfolio_id}/transactions/export", {"format": "csv"},
                                   "transactions.csv")

    async def tax_report(self, portfolio_id: str, year: int, method: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"year": year, **({"method": method} if method else {})}
        return await self.json("GET", f"/v1/portfolios/{portfolio_id}/tax-report",  # type: ignore[no-any-return]
                               params=params)

    async def tax_report_csv(self, portfolio_id: str, year: int, method: str) -> tuple[str, bytes]:
        return await self.download(f"/v1/portfolios/{portfolio_id}/tax-report",
                                   {"year": year, "method": method, "format": "csv"}, f"tax-{year}.csv")
