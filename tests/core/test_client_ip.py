"""The network a client address counts in for per-network limits (``core.client_ip``)."""

from __future__ import annotations

import pytest

from core.client_ip import client_network


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("198.51.100.7", "198.51.100.0/24"),
        ("198.51.100.255", "198.51.100.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::ABCD", "2001:db8:1:2::/64"),
        # Mapped into IPv6 by a dual-stack proxy: still its IPv4 /24, not everyone's ::/64.
        ("::ffff:192.0.2.1", "192.0.2.0/24"),
        ("", ""),
        (None, ""),
        ("not-an-address", ""),
    ],
)
def test_client_network(ip, network):
    assert client_network(ip) == network
