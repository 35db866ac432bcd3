"""Every exchange, queue, routing key and header name on the bus."""

EVENTS_EXCHANGE = "bitfolio.events"
"""Topic exchange for facts: price.*, portfolio.updated."""
COMMANDS_EXCHANGE = "bitfolio.commands"
"""Topic exchange for request/reply commands and queries."""
DEAD_LETTER_EXCHANGE = "bitfolio.dlx"
"""Direct exchange; a poison message is routed here under its source queue's name."""

# Routing keys of events
PRICE_REQUESTED = "price.requested"
PRICE_RESOLVED = "price.resolved"
PRICE_UNAVAILABLE = "price.unavailable"
PRICE_TICKED = "price.ticked"
PORTFOLIO_UPDATED = "portfolio.updated"
ACCESS_REVOKED = "access.revoked"
"""Published as `portfolio.updated.<owner_id>` (portfolio_updated_key), so a reader binds only the owners it serves."""
PORTFOLIO_UPDATED_ANY_OWNER = "portfolio.updated.#"
"""Binding key for every owner's updates (a read model of all portfolios)."""

# Routing keys of queries answered by the price service
PRICE_RANGE = "price.range"
PRICE_AT = "price.at"
PRICE_LATEST = "price.latest"

# Routing keys of commands answered by the portfolio service
PORTFOLIO_CREATE = "portfolio.create"
PORTFOLIO_RENAME = "portfolio.rename"
PORTFOLIO_SET_GOAL = "portfolio.set_goal"
PORTFOLIO_SET_METHOD = "portfolio.set_method"
PORTFOLIO_DELETE = "portfolio.delete"
PORTFOLIO_GET = "portfolio.get"
PORTFOLIO_LIST = "portfolio.list"
PORTFOLIO_HISTORY = "portfolio.history"
PORTFOLIO_TAX_REPORT = "portfolio.tax_report"
TRANSACTION_RECORD = "transaction.record"
TRANSACTION_EDIT = "transaction.edit"
TRANSACTION_DELETE = "transaction.delete"
TRANSACTION_GET = "transaction.get"
TRANSACTION_LIST = "transaction.list"
TRANSACTION_IMPORT = "transaction.import"
TRANSACTION_EXPORT = "transaction.export"
# Transfers between two portfolios of one owner (under transaction.*, so the same queue and permissions serve them)
TRANSFER_RECORD = "transaction.transfer"
TRANSFER_EDIT = "transaction.transfer_edit"
TRANSFER_DELETE = "transaction.transfer_delete"

# Durable work queues
PRICE_REQUESTS_QUEUE = "price.requests"
PRICE_QUERIES_QUEUE = "price.queries"
PORTFOLIO_COMMANDS_QUEUE = "portfolio.commands"
PORTFOLIO_PRICE_EVENTS_QUEUE = "portfolio.price-events"

READ_MODEL_QUEUE_PREFIX = "gateway.read-model."
"""Each gateway copy's own exclusive queue (this prefix and a random hex id): portfolio.updated, access.revoked."""

DEAD_LETTER_SUFFIX = ".dlq"
DEAD_LETTER_REASON_HEADER = "x-bitfolio-dead-letter-reason"
"""Header that carries, in a sentence, why a message was dead-lettered."""


def dead_letter_queue(queue: str) -> str:
    return queue + DEAD_LETTER_SUFFIX


def portfolio_updated_key(owner_id: str) -> str:
    """The routing key (and a reader's binding key) of one owner's portfolio.updated."""
    return f"{PORTFOLIO_UPDATED}.{owner_id}"
