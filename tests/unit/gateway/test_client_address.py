"""Which address the gateway counts a login against: X-Forwarded-For only from a trusted proxy."""

from gateway.domain.client_address import client_address, trusted_networks

PROXIES = trusted_networks(["10.0.0.5", "172.18.0.0/16"])


def test_a_trusted_proxy_names_the_client_it_forwards() -> None:
    assert client_address("10.0.0.5", "203.0.113.9", PROXIES) == "203.0.113.9"
    assert client_address("172.18.0.3", "203.0.113.9, 10.0.0.5", PROXIES) == "203.0.113.9"


def test_an_untrusted_peer_cannot_choose_its_address() -> None:
    assert client_address("198.51.100.1", "203.0.113.9", PROXIES) == "198.51.100.1"


def test_only_the_hop_our_proxy_saw_is_believed_not_what_the_client_prepended() -> None:
    assert client_address("10.0.0.5", "1.2.3.4, 203.0.113.9", PROXIES) == "203.0.113.9"


def test_garbage_in_the_header_falls_back_to_the_proxy() -> None:
    assert client_address("10.0.0.5", "not-an-ip", PROXIES) == "10.0.0.5"
    assert client_address("10.0.0.5", "", PROXIES) == "10.0.0.5"
