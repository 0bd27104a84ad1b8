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
