"""Kami's admin site: Django's, with the second factor (issue #9).

- The login form asks for a code from anyone who has a second factor (``AdminLoginForm``), and
  runs behind the login lockout.
- A session opened without that code (for instance at the promoter login, which has no second
  step) is not an admin session: ``has_permission`` treats it like a non-staff one.
- An owner who must use a second factor and has none is sent to enrolment
  (``/admin/two-factor/``) before any other admin page; only logging out stays open.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import URLPattern, URLResolver, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from core.auth_forms import AdminLoginForm
from core.two_factor import owner_must_enrol, second_factor_satisfied
from core.two_factor_views import two_factor_setup

_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


class KamiAdminSite(admin.AdminSite):
    login_form = AdminLoginForm
    login_template = "admin/kami_login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and second_factor_satisfied(request.user)

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        protected = super().admin_view(view, cacheable)
        if view == self.logout:
            return protected

        @wraps(protected)
        def enrol_first(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if owner_must_enrol(request.user):
                query = urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})
                setup = reverse("admin:two_factor", current_app=self.name)
                return HttpResponseRedirect(f"{setup}?{query}")
            return protected(request, *args, **kwargs)

        return cast(_View, enrol_first)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        setup = never_cache(csrf_protect(self._staff_only(two_factor_setup)))
        return [path("two-factor/", setup, name="two_factor"), *super().get_urls()]

    def _staff_only(self, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        """Any active staff login, verified or not: enrolment is how an owner gets verified."""

        @wraps(view)
        def inner(request: HttpRequest) -> HttpResponse:
            user = request.user
            if not (user.is_active and user.is_staff):
                query = urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})
                login = reverse("admin:login", current_app=self.name)
                return HttpResponseRedirect(f"{login}?{query}")
            return view(request, site=self)

        return inner
