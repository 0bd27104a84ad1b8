"""Secrets never reach a log: one redaction rule for every log handler and the console email.

The first rule is that code never hands a card key, a password or a token to a logger. This
module is the second net, for what slips through anyway (a debug print, an exception message,
a SQL statement logged at DEBUG, a third-party library's chatter). ``RedactSecretsFilter`` sits
on every handler in ``LOGGING`` (and on Celery's, ``shop.celery``) and rewrites each record
before it is formatted, in place, so every later handler and pytest's ``caplog`` see the
redacted record too. It redacts three kinds of thing:

1. **Values under secret names**, wherever the name is visible: keys of dict arguments
   (``logger.info("%(password)s", {...})``, nested dicts too), ``name=value`` pairs in query
   strings and forms (``?email=…&query_password=…``: ``redact_query``, the same rule the access
   logs of both web servers use, ``shop.access_log``), ``"name": "value"`` pairs in JSON or
   ``repr`` output, ``Authorization``/``Bearer`` credentials and the ``v1=`` HMACs of a
   ``Stripe-Signature`` header (the webhook inbox stores the header, so SQL at DEBUG shows it).
2. **Values with a recognisable shape**: Kami API tokens (``kami_…``), Stripe secret and
   webhook keys (``sk_…``, ``rk_…``, ``whsec_…``).
3. **Known secrets**: values the code registered because it held them in clear. A card key
   has no shape to match, so ``cardpool.crypto.decrypt_secret`` registers every plaintext it
   returns; query passwords where they are hashed or checked (``orders.query_passwords``),
   API tokens where they are minted or checked, account passwords in the one authentication
   backend every login goes through. Each is registered with the forms it takes in text:
   HTML-escaped (a rendered email), JSON-escaped, URL-encoded. The registry is a
   ``ContextVar`` scoped to one request (``SecretScopeMiddleware``) or one Celery task
   (``shop.celery``): whatever that unit of work logs — its SQL, the delivery email on the
   console (``core.console_email``) — has them replaced by ``***``, and a thread serving the
   next request holds none of them. Secrets from the settings
   (``SECRET_KEY``, the encryption keys, Stripe keys, the mail password) are registered for the
   whole process (``register_settings_secrets``). Values shorter than ``MIN_SECRET_LENGTH`` are
   not registered: masking every "ab" in every line would shred the log and protect little.

The filter never drops a record, and a record it cannot format (bad arguments) goes on
untouched, as logging itself would have reported it.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, unquote_plus

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

REDACTED = "***"
# Query and form parameters whose values never reach a log (compared case-insensitively,
# decoded): the lookup credentials, and any password or token.
SENSITIVE_PARAMS = frozenset({"email", "query_password", "password", "token"})
# Names whose values are redacted in dict arguments and in ``name: value`` / ``name=value``
# text. ``email`` is not among them: an email alone opens nothing, and SQL and alerts need it.
SECRET_NAMES = frozenset(
    {
        "query_password",
        "password",
        "password1",
        "password2",
        "new_password1",
        "new_password2",
        "old_password",
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "secret",
        "authorization",
        "stripe-signature",
        "stripe_signature",
        "http_authorization",
        "http_stripe_signature",
        "cookie",
        "http_cookie",
        "sessionid",
        "csrftoken",
    }
)
MIN_SECRET_LENGTH = 4
MAX_KNOWN_SECRETS = 256

_known: ContextVar[tuple[str, ...]] = ContextVar("kami_known_secrets", default=())
_process_secrets: tuple[str, ...] = ()


def _alternation(names: Iterable[str]) -> str:
    return "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))


_NAMES = _alternation(SECRET_NAMES)
# An Authorization value starts with its scheme ("Bearer …"): ``_AUTHORIZATION`` handles it.
_BARE_NAMES = _alternation(SECRET_NAMES - {"authorization", "http_authorization"})
# "name": "value" (JSON), 'name': 'value' (repr), name="value" — the value in quotes.
_QUOTED_PAIR = re.compile(
    rf"""(?P<head>(?P<q>["']?)(?:{_NAMES})(?P=q)\s*[:=]\s*)(?P<v>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""",
    re.IGNORECASE,
)
# name=value / name: value unquoted (a form body, a header line): up to a separator.
_BARE_PAIR = re.compile(
    rf"""(?P<head>(?<![\w-])(?:{_BARE_NAMES})\s*[:=]\s*)(?P<v>(?!\*\*\*)[^\s&,;'"}}\])]+)""",
    re.IGNORECASE,
)
_QUERY_PAIR = re.compile(r"(?P<head>[?&;](?P<name>[^=&#\s'\"]+)=)(?P<v>[^&#\s'\"]*)")
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<v>(?!\*\*\*)[^\s'\",;]+)", re.IGNORECASE)
# An Authorization header's value, whatever its scheme ("Basic …", "Token …", a bare value).
_AUTHORIZATION = re.compile(
    r"""(?P<head>\bauthorization["']?\s*[:=]\s*["']?(?:(?:Bearer|Basic|Token|Digest)\s+)?)"""
    r"""(?P<v>(?!\*\*\*)(?!(?:Bearer|Basic|Token|Digest)\b)[^\s'",;]+)""",
    re.IGNORECASE,
)
_STRIPE_SIGNATURE_HMAC = re.compile(r"(?P<head>\bv[01]=)(?P<v>[0-9a-fA-F]{16,})")
_SHAPED_SECRETS = re.compile(
    r"\b(?:kami_[A-Za-z0-9_-]{20,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9_]{8,})"
)


# --- The known-secrets registry ----------------------------------------------------------------


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret of the current request or task: it is redacted from
    every log line (and console email) until that unit of work ends."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    known = _known.get()
    if value in known:
        return
    _known.set((known + _forms(value))[-MAX_KNOWN_SECRETS:])


def _forms(value: str) -> tuple[str, ...]:
    """``value`` as it may be written: itself, HTML-escaped (a rendered page or email),
    JSON-escaped (a logged payload), URL-encoded (a logged query string)."""
    forms = [
        value,
        html.escape(value, quote=True),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
    ]
    return tuple(dict.fromkeys(forms))


def register_process_secrets(values: Iterable[str | None]) -> None:
    """Secrets that live as long as the process (configuration): redacted everywhere."""
    global _process_secrets
    fresh = {form for v in values if v and len(v) >= MIN_SECRET_LENGTH for form in _forms(v)} - set(
        _process_secrets
    )
    _process_secrets = _process_secrets + tuple(sorted(fresh, key=len, reverse=True))


def register_settings_secrets(settings: Any) -> None:
    """Register the secrets in Django settings (called once at start-up, ``CoreConfig``)."""
    values = [
        getattr(settings, "SECRET_KEY", ""),
        *getattr(settings, "SECRET_KEY_FALLBACKS", []),
        getattr(settings, "STRIPE_SECRET_KEY", ""),
        getattr(settings, "STRIPE_WEBHOOK_SECRET", ""),
        getattr(settings, "CARDKEY_FINGERPRINT_KEY", ""),
        getattr(settings, "EMAIL_HOST_PASSWORD", ""),
        *str(getattr(settings, "CARDKEY_ENCRYPTION_KEY", "")).split(","),
    ]
    register_process_secrets(v.strip() for v in values if isinstance(v, str))


def known_secrets() -> tuple[str, ...]:
    return _known.get() + _process_secrets


@contextmanager
def secret_scope() -> Iterator[None]:
    """One unit of work: secrets registered inside are forgotten when it ends (the ones of an
    enclosing scope stay known inside it)."""
    token = _known.set(_known.get())
    try:
        yield
    finally:
        _known.reset(token)


_open_scopes: dict[str, Token[tuple[str, ...]]] = {}


def secret_scope_enter(name: str) -> None:
    """``secret_scope`` for callers with separate start and end hooks (Celery's task signals,
    which run in the task's thread, ``name`` its task id)."""
    _open_scopes[name] = _known.set(_known.get())


def secret_scope_exit(name: str) -> None:
    token = _open_scopes.pop(name, None)
    if token is not None:
        try:
            _known.reset(token)
        except ValueError:  # entered in another context: forget this one's secrets instead
            _known.set(())


class SecretScopeMiddleware:
    """Each request is its own secret scope: what it decrypted is redacted from what it logs,
    and forgotten afterwards (threads serve many requests; none keeps another's keys)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with secret_scope():
            return self.get_response(request)


# --- Redaction ---------------------------------------------------------------------------------


def redact_query_string(query: str) -> str:
    """``query`` (without the ``?``) with the values of ``SENSITIVE_PARAMS`` replaced by ``***``."""
    if not query:
        return query
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, sep, value = part.partition("=")
        if value and unquote_plus(name).strip().lower() in SENSITIVE_PARAMS:
            parts[i] = f"{name}{sep}{REDACTED}"
            changed = True
    return "&".join(parts) if changed else query


def redact_query(path: str) -> str:
    """A path or URL (``/a/b?x=1&email=…#frag``) with sensitive query values replaced by ``***``."""
    if not path or "?" not in path:
        return path
    head, _, rest = path.partition("?")
    query, hash_sign, fragment = rest.partition("#")
    return f"{head}?{redact_query_string(query)}{hash_sign}{fragment}"


def _sub_value(match: re.Match[str]) -> str:
    value = match.group("v")
    if value[:1] in ("'", '"'):
        return f"{match.group('head')}{value[0]}{REDACTED}{value[0]}"
    return f"{match.group('head')}{REDACTED}"


def _sub_query_pair(match: re.Match[str]) -> str:
    name = unquote_plus(match.group("name")).strip().lower()
    if match.group("v") and (name in SENSITIVE_PARAMS or name in SECRET_NAMES):
        return f"{match.group('head')}{REDACTED}"
    return match.group(0)


def redact_text(text: str) -> str:
    """``text`` with every secret this module knows of replaced by ``***``."""
    if not text:
        return text
    present = [secret for secret in known_secrets() if secret in text]
    for secret in sorted(present, key=len, reverse=True):  # a longer secret may hold a shorter
        text = text.replace(secret, REDACTED)
    text = _SHAPED_SECRETS.sub(REDACTED, text)
    if "=" in text:
        text = _QUERY_PAIR.sub(_sub_query_pair, text)
        text = _STRIPE_SIGNATURE_HMAC.sub(_sub_value, text)
    text = _BEARER.sub(_sub_value, text)
    text = _AUTHORIZATION.sub(_sub_value, text)
    text = _QUOTED_PAIR.sub(_sub_value, text)
    return _BARE_PAIR.sub(_sub_value, text)


def redact_value(value: Any, *, depth: int = 0) -> Any:
    """A log argument with secrets redacted: dicts by key name (nested), strings by text."""
    if depth > 4:
        return value
    if isinstance(value, Mapping):
        return {
            key: (
                REDACTED
                if isinstance(key, str) and key.lower() in SECRET_NAMES and value[key]
                else redact_value(value[key], depth=depth + 1)
            )
            for key in value
        }
    if isinstance(value, list | tuple) and not isinstance(value, str):
        return type(value)(redact_value(v, depth=depth + 1) for v in value)
    return value


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite ``record`` in place: its message (arguments merged in) and any traceback."""
    if getattr(record, "_kami_redacted", False):
        return
    if isinstance(record.args, Mapping | tuple):
        with suppress(Exception):  # an argument that cannot be walked is left as it is
            record.args = redact_value(record.args)
    try:
        message = record.getMessage()
    except Exception:  # logging reports a bad format string itself; do not hide that
        return
    redacted = redact_text(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    sql = getattr(record, "sql", None)  # django.db.backends passes the statement as extra too
    if isinstance(sql, str):
        record.sql = redact_text(sql)
    record._kami_redacted = True


class RedactSecretsFilter(logging.Filter):
    """Every handler's filter (``LOGGING``): redacts the record in place, never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_on_handlers(handlers: Iterable[logging.Handler]) -> None:
    """Add the filter to handlers configured outside ``LOGGING`` (Celery's), once each."""
    for handler in handlers:
        if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
            handler.addFilter(RedactSecretsFilter())
