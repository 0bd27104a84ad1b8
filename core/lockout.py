"""Login lockout: django-axes counts failed logins in the database, and a gate in front of it
keeps concurrent guesses inside the limit (issue #9, "login throttles missing").

**What locks.** ``AXES_FAILURE_LIMIT`` failed logins (wrong password, wrong second factor) per
username and, separately, per client address lock that username or address for
``AXES_COOLOFF_TIME`` after the last counted failure; the right password is refused too until
then, or until the owner unlocks it in the admin. The address is ``core.client_ip`` (so
``TRUST_X_FORWARDED_FOR`` applies), an IPv6 client counted by its /64: one host owns a whole
/64, and per-address counting would hand it 2^64 budgets.

**Why a gate.** Axes checks the count before the password and records the failure after it, so
a hundred guesses sent at once are all checked against a count still at zero, and all of them
are evaluated (the finding: 69 of 100 lookups against a limit of 30). ``login_attempt`` first
takes an in-flight slot for the username and for the address (one atomic cache increment each),
then reads the failures recorded so far, and lets the password be checked only if, for each,
failures + attempts in flight (this one included) stay within the limit. A failure is recorded
before its slot is given back, so at any moment every attempt that was let through is either
still counted in flight or already counted as a failure: however many arrive together, at most
``AXES_FAILURE_LIMIT`` of them are wrong passwords evaluated per username and per address.

**When the cache is unreachable** the slots are counted in this process, as ``core.ratelimit``
does and for the same reasons; the failures, and so the lockout itself, stay in the database.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.conf import settings
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_parameters, get_cool_off, get_credentials, get_failure_limit
from django.contrib import admin
from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.db.models import Max, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from core.client_ip import client_ip
from core.middleware import API_PREFIX

logger = logging.getLogger(__name__)

LOCKED_MESSAGE = "Too many failed logins: wait and retry."
# A slot outlives any password check by far; a process killed mid-check frees its slot then.
INFLIGHT_TTL_SECONDS = 60
# Refused only because the budget is taken by checks still running: they end within a second.
INFLIGHT_RETRY_SECONDS = 5
# With AXES_COOLOFF_TIME unset a lock lasts until the owner lifts it; tell clients an hour.
PERMANENT_RETRY_SECONDS = 3600

_local = LocMemCache("kami-login-inflight-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})


class LoginLocked(Exception):
    """The username or the address is locked out (or its budget is in flight): not evaluated."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(LOCKED_MESSAGE)
        self.retry_after = retry_after


def lockout_address(request: HttpRequest) -> str | None:
    """``AXES_CLIENT_IP_CALLABLE``: the client IP, an IPv6 address as its /64 network."""
    ip = client_ip(request)
    if ip is None:
        return None
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False).network_address)
    return ip


class LockoutCheckMixin(AxesStandaloneBackend):
    """Axes' check, for a ``ModelBackend`` subclass (listed before it): every
    ``authenticate()`` that comes with a request is refused while its username or address is
    locked. Without a request (``manage.py``, the test client's ``login()``) there is no client
    to lock out, and axes would refuse to run at all."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if request is not None:  # raises PermissionDenied while locked out
            AxesStandaloneBackend.authenticate(
                self, request, username=username, password=password, **kwargs
            )
        return super(AxesStandaloneBackend, self).authenticate(
            request, username=username, password=password, **kwargs
        )


@dataclass(frozen=True)
class _Standing:
    failures: int
    last_failure: datetime | None


def _standings(request: HttpRequest, credentials: dict[str, Any] | None) -> list[_Standing]:
    """Per lockout parameter (username, address): failures within the cool-off, last one when."""
    handler = AxesProxyHandler.get_implementation()
    attempts_list: list[QuerySet[Any]] = handler.get_user_attempts(request, credentials)
    standings = []
    for attempts in attempts_list:
        row = attempts.aggregate(total=Sum("failures_since_start"), last=Max("attempt_time"))
        standings.append(_Standing(failures=row["total"] or 0, last_failure=row["last"]))
    return standings


def retry_after(request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
    """Seconds until the lock on this username or address ends (for ``Retry-After``)."""
    AxesProxyHandler.update_request(request)
    limit = get_failure_limit(request, credentials)
    cool_off: timedelta | None = get_cool_off(request)
    now = timezone.now()
    seconds = 0
    for standing in _standings(request, credentials):
        if standing.failures < limit or standing.last_failure is None:
            continue
        if cool_off is None:
            return PERMANENT_RETRY_SECONDS
        left = (standing.last_failure + cool_off - now).total_seconds()
        seconds = max(seconds, math.ceil(left))
    return max(seconds, 1) if seconds else INFLIGHT_RETRY_SECONDS


def _slot_key(parameters: dict[str, Any]) -> str:
    text = "&".join(f"{name}={value}" for name, value in sorted(parameters.items()))
    return "login-inflight:" + hashlib.sha256(text.encode()).hexdigest()


def _increment(cache: BaseCache, key: str) -> int:
    for _ in range(3):
        try:
            count = cache.incr(key)
        except ValueError:  # no counter yet
            if cache.add(key, 1, INFLIGHT_TTL_SECONDS):
                return 1
            continue  # someone created it meanwhile: increment theirs
        cache.touch(key, INFLIGHT_TTL_SECONDS)  # in use: it must not expire under a check
        return count
    raise RuntimeError(f"login slot counter {key} keeps vanishing")  # pragma: no cover


@dataclass(frozen=True)
class _Slot:
    key: str
    in_flight: int  # attempts in flight for this parameter, this one included
    local: bool  # counted in this process: the shared cache was unreachable


def _take_slot(key: str) -> _Slot:
    try:
        return _Slot(key, _increment(caches["default"], key), local=False)
    except Exception as exc:
        logger.warning("login lockout: the cache is unreachable (%s); counting here", exc)
        return _Slot(key, _increment(_local, key), local=True)


def _give_back(slot: _Slot) -> None:
    cache = _local if slot.local else caches["default"]
    try:
        cache.decr(slot.key)
    except ValueError:  # expired meanwhile: nothing to give back
        pass
    except Exception as exc:
        logger.warning("login lockout: slot not given back (%s)", exc)


@contextmanager
def login_attempt(request: HttpRequest, username: str) -> Iterator[None]:
    """Evaluate one set of credentials for ``username`` inside the block, or raise
    ``LoginLocked`` before it. The block must record its failure (``authenticate()`` does,
    through axes' ``user_login_failed`` handler) before it ends; see the module docstring."""
    if not settings.AXES_ENABLED:
        yield
        return
    credentials = get_credentials(username)
    AxesProxyHandler.update_request(request)
    parameters = get_client_parameters(
        username,
        request.axes_ip_address,  # type: ignore[attr-defined]
        request.axes_user_agent,  # type: ignore[attr-defined]
        request,
        credentials,
    )
    slots: list[_Slot] = []
    try:
        slots = [_take_slot(_slot_key(p)) for p in parameters]
        limit = get_failure_limit(request, credentials)
        standings = _standings(request, credentials)
        if any(
            s.failures + slot.in_flight > limit for s, slot in zip(standings, slots, strict=True)
        ):
            raise LoginLocked(retry_after(request, credentials))
        yield
    finally:
        for slot in slots:
            _give_back(slot)


def mark_locked_out(request: HttpRequest, username: str) -> None:
    """Let ``AxesMiddleware`` answer with the lockout page (``lockout_response``)."""
    request.axes_locked_out = True  # type: ignore[attr-defined]
    request.axes_credentials = get_credentials(username)  # type: ignore[attr-defined]


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: ``429`` with ``Retry-After``; the API's ``{code, message}``
    under ``/api/``, a page that says what happened and what to do everywhere else."""
    seconds = retry_after(request, credentials)
    response: HttpResponse
    if request.path_info.startswith(API_PREFIX):
        response = JsonResponse({"code": "rate_limited", "message": LOCKED_MESSAGE}, status=429)
    else:
        context: dict[str, Any] = {"minutes": max(1, math.ceil(seconds / 60))}
        template = "lockout.html"
        if request.path_info.startswith("/admin/"):
            template = "admin/lockout.html"
            context = {**admin.site.each_context(request), **context}
        response = render(request, template, context, status=429)
    response["Retry-After"] = str(seconds)
    return response
