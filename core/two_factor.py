"""A second factor for staff (issue #9): an authenticator app (TOTP) and one-time recovery codes,
kept by django-otp (``otp_totp``, ``otp_static``).

Any staff user may enrol; from then on the admin asks for a code at every login. The owner
*must* enrol when ``KAMI_REQUIRE_OWNER_2FA`` is on (the default with ``DEBUG`` off): an owner
without a confirmed device is sent to enrolment before any admin page (``core.admin_site``).

Enrolment is a pending (unconfirmed) TOTP device whose secret the user scans; the first right
code confirms it, replaces any earlier authenticator, and issues ten recovery codes, shown once.
A recovery code works once: django-otp deletes it when it verifies. Every verification locks
the device row first (``django_otp.verify_token``), so two logins racing with the same code
cannot both pass — not the same TOTP code (its time step is recorded) nor the same recovery code.
"""

from __future__ import annotations

import re
from base64 import b32encode
from typing import Any

import django_otp
import qrcode
import qrcode.image.svg
from django.conf import settings
from django.db import transaction
from django.utils.safestring import SafeString, mark_safe
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.roles import is_owner

RECOVERY_CODE_COUNT = 10
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_CODES_NAME = "Recovery codes"
_TOTP_CODE = re.compile(r"\d{6}")


def has_second_factor(user: Any) -> bool:
    """Whether ``user`` has a confirmed device, so that every admin login must show a code."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    cached: bool | None = getattr(user, "_kami_has_second_factor", None)
    if cached is None:
        cached = django_otp.user_has_device(user, confirmed=True)
        user._kami_has_second_factor = cached
    return cached


def is_verified(user: Any) -> bool:
    """Whether this session was opened with a code (set by ``django_otp``'s middleware)."""
    check = getattr(user, "is_verified", None)
    return bool(check is not None and check())


def second_factor_satisfied(user: Any) -> bool:
    return not has_second_factor(user) or is_verified(user)


def admin_session_allowed(user: Any, session: Any) -> bool:
    """What the admin site asks of a request, for a connection that has only the session (the
    owner's live feed socket, where ``django_otp``'s middleware never ran): an active staff
    account, verified with the device the session was opened with if it has one, and an owner
    who must enrol has done so."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if not (user.is_active and user.is_staff) or owner_must_enrol(user):
        return False
    if not has_second_factor(user):
        return True
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return bool(device is not None and device.user_id == user.pk and device.confirmed)


def owner_must_enrol(user: Any) -> bool:
    return bool(settings.KAMI_REQUIRE_OWNER_2FA and is_owner(user) and not has_second_factor(user))


def authenticator_pending(*, user: Any) -> TOTPDevice:
    """The device being set up: the same one (and secret) on every reload until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


def authenticator_confirm(*, user: Any, code: str) -> tuple[TOTPDevice, list[str]] | None:
    """Confirm the pending device with its first code: it replaces the user's earlier
    authenticator, and fresh recovery codes are issued. ``None`` for a wrong code."""
    code = normalise_code(code)
    if not _TOTP_CODE.fullmatch(code):
        return None
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("pk")
            .first()
        )
        if device is None or not device.verify_token(code):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        codes = recovery_codes_issue(user=user)
    user._kami_has_second_factor = True
    return device, codes


def recovery_codes_issue(*, user: Any) -> list[str]:
    """Ten new one-time codes; any earlier ones stop working. Returned once, to be shown once."""
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(
            user=user, name=RECOVERY_CODES_NAME, defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def recovery_codes_left(*, user: Any) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def normalise_code(code: str) -> str:
    """Codes as people type them: spaces and dashes dropped, case ignored."""
    return re.sub(r"[\s-]", "", code or "").lower()[:32]


def second_factor_verify(*, user: Any, code: str) -> Device | None:
    """The device that accepts ``code``: six digits are an authenticator code, anything else
    a recovery code (tried only against the kind it can be, so a typo never throttles the
    other device)."""
    code = normalise_code(code)
    if not code:
        return None
    kind = TOTPDevice if _TOTP_CODE.fullmatch(code) else StaticDevice
    for device in kind.objects.filter(user=user, confirmed=True).order_by("pk"):
        verified = django_otp.verify_token(user, device.persistent_id, code)
        if verified is not None:
            return verified
    return None


def authenticator_secret(device: TOTPDevice) -> str:
    """The secret as people type it into an app: base32, in groups of four."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def authenticator_qr_svg(device: TOTPDevice) -> SafeString:
    """The ``otpauth://`` URL as an inline SVG QR code (no image request, no inline script)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    svg = image.to_string(encoding="unicode")
    svg = svg.replace(
        "<svg ", '<svg class="otp-qr" role="img" aria-label="QR code for your app" ', 1
    )
    return mark_safe(svg)  # noqa: S308 - generated by qrcode from the device's own URL
