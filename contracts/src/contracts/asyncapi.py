"""The AsyncAPI 2.6 document of every event, command and query, generated from the contract models."""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts import names, portfolios, prices, sessions
from contracts.errors import Reply
from contracts.topology import QUEUES

EVENTS: dict[str, type[BaseModel]] = {
    names.PRICE_REQUESTED: prices.PriceRequested,
    names.PRICE_RESOLVED: prices.PriceResolved,
    names.PRICE_UNAVAILABLE: prices.PriceUnavailable,
    names.PRICE_TICKED: prices.PriceTicked,
    names.PORTFOLIO_UPDATED: portfolios.PortfolioUpdated,
    names.ACCESS_REVOKED: sessions.AccessRevoked,
}
QUERIES: dict[str, type[BaseModel]] = {
    names.PRICE_RANGE: prices.PriceRangeRequested,
    names.PRICE_AT: prices.PriceAtRequested,
    names.PRICE_LATEST: prices.LatestPriceRequested,
    **portfolios.COMMANDS,
}


def _consumers(routing_key: str) -> list[str]:
    def matches(pattern: str) -> bool:
        head, _, tail = pattern.partition(".")
        return pattern == routing_key or (tail == "*" and routing_key.startswith(head + "."))

    return [spec.name for spec in QUEUES if any(matches(key) for key in spec.routing_keys)]


def _delivery(model: type[BaseModel]) -> dict[str, bool]:
    """How a message is published: a notification is transient and unconfirmed, anything else persistent and
    confirmed (see docs/architecture.md, Delivery)."""
    notification = bool(getattr(model, "notification", False))
    return {"persistent": not notification, "publisher_confirmed": not notification, "outbox": not notification}


def asyncapi_document(version: str = "0.1.0") -> dict[str, Any]:
    """Channels are routing keys; every message links to its JSON schema under components."""
    models: list[type[BaseModel]] = [*EVENTS.values(), *QUERIES.values(), Reply]
    _, schema = models_json_schema([(m, "serialization") for m in models], ref_template="#/components/schemas/{model}")
    channels: dict[str, Any] = {}
    for key, model in EVENTS.items():
        channels[key] = {
            "description": (model.__doc__ or "").strip(),
            "subscribe": {"message": {"$ref": f"#/components/messages/{model.__name__}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": {"name": names.EVENTS_EXCHANGE, "type": "topic",
                                                                   "durable": True}}},
            "x-consumer-queues": _consumers(key),
            "x-delivery": _delivery(model),
        }
        if key == names.PORTFOLIO_UPDATED:
            channels[key]["x-routing-key"] = names.portfolio_updated_key("{owner_id}")
            channels[key]["x-binding-key-all-owners"] = names.PORTFOLIO_UPDATED_ANY_OWNER
    for key, model in QUERIES.items():
        channels[key] = {
            "description": (model.__doc__ or "request/reply; the reply is a Reply").strip(),
            "publish": {"message": {"$ref": f"#/components/messages/{model.__name__}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": {"name": names.COMMANDS_EXCHANGE, "type": "topic",
                                                                   "durable": True}}},
            "x-reply": {"$ref": "#/components/messages/Reply"},
            "x-consumer-queues": _consumers(key),
            "x-delivery": {"persistent": True, "publisher_confirmed": True, "outbox": False},
        }
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "Bitfolio events and commands", "version": version,
                 "description": "Every message carries message_id, correlation_id, causation_id, occurred_at and "
                                "schema_version. Money travels as decimal strings. Poison messages go to "
                                f"'{names.DEAD_LETTER_EXCHANGE}' with header '{names.DEAD_LETTER_REASON_HEADER}'."},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {
            "messages": {m.__name__: {"name": m.__name__, "payload": {"$ref": f"#/components/schemas/{m.__name__}"}}
                         for m in models},
            "schemas": schema.get("$defs", {}),
        },
    }
