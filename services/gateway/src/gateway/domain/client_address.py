"""Who is asking: the peer's address, or the client named by X-Forwarded-For when the peer is a trusted proxy."""

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

Network = IPv4Network | IPv6Network


def trusted_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """Addresses ("10.0.0.5") and networks ("172.18.0.0/16") from settings."""
    return tuple(ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The first hop, from the right, that is not one of our proxies.

    Only a trusted peer's header is read, and only right to left: the left part of the header is whatever the
    client wrote, so the nearest address that our own proxies did not add is the one that can be believed."""
    if not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    nearest = peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            ip_address(hop)
        except ValueError:
            return nearest  # garbage in the chain: stop at the last proxy we trust
        if not _is_trusted(hop, trusted):
            return hop
        nearest = hop
    return nearest
