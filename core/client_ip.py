"""The client IP that risk rules and rate limits see (contract §2, ``TRUST_X_FORWARDED_FOR``)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """Behind a trusted proxy, the last ``X-Forwarded-For`` hop (the one the proxy added);
    otherwise the socket's peer. Earlier hops are client-supplied and therefore ignored."""
    return client_ip_of(
        peer=request.META.get("REMOTE_ADDR", ""),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )


def client_ip_of(*, peer: str, forwarded_for: str) -> str | None:
    """``client_ip`` from its two inputs, for a caller without a request (a WebSocket)."""
    candidate = peer
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = forwarded_for
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            candidate = hops[-1]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


IPV4_NETWORK_PREFIX = 24
IPV6_NETWORK_PREFIX = 64


def client_network(ip: str | None) -> str:
    """The network ``ip`` belongs to for per-network limits: its IPv4 /24 or IPv6 /64, as
    ``198.51.100.0/24`` or ``2001:db8:1:2::/64``; "" when the address is unknown.

    Per-address limits alone let a client rotate addresses for free: an IPv6 subscriber gets a
    whole /64 (2^64 addresses), an IPv4 one often a few neighbours. An IPv4 address mapped into
    IPv6 (``::ffff:192.0.2.1``) counts as its IPv4 network, or every IPv4 client behind a
    dual-stack proxy would share one ``::/64``.
    """
    if not ip:
        return ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = IPV4_NETWORK_PREFIX if address.version == 4 else IPV6_NETWORK_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
