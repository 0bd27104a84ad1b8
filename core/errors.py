"""Domain errors with a stable ``code`` and an HTTP status, shared by the API and the pages.

Services raise these; the API turns them into ``{code, message}`` JSON (``ErrorOut``, the one
schema every router declares for its error statuses) and the pages into a friendly message. A
service that raises one has changed nothing (it raises before writing or inside the
transaction that is rolled back).
"""

from __future__ import annotations

from ninja import Schema


class ErrorOut(Schema):
    """Every error the API answers: a stable machine ``code`` and a message for people."""

    code: str
    message: str


class KamiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InvalidInput(KamiError):
    status = 422
    code = "invalid"


class NotFound(KamiError):
    status = 404
    code = "not_found"


class OutOfStock(KamiError):
    status = 409
    code = "out_of_stock"


class Blocked(KamiError):
    status = 403
    code = "blocked"


class TooManyUnpaid(KamiError):
    status = 429
    code = "too_many_unpaid"


class RateLimited(KamiError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PaymentUnavailable(KamiError):
    status = 503
    code = "payments_unavailable"


class PaymentProviderError(KamiError):
    status = 502
    code = "payment_provider_error"
