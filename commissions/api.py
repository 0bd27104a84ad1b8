"""Promoter API: tokens, the promoter's own balances and commissions (issue #3)."""

from ninja import Router

router = Router(tags=["promoters"])
