"""The owner's notification destinations in the admin: owner only (they hold bot tokens and
robot URLs, which are credentials), each with the real state of its latest message and a
"send a test message" action.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from core.roles import is_owner
from orders.notices.batching import notifier_test
from orders.notices.models import NoticeBatch, NoticeKind, OwnerNotifier
from orders.outbox.selectors import message_state


class OwnerNotifierForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=NoticeKind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Nothing is sent for an event that is not ticked.",
    )
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=OwnerNotifier._meta.get_field("secret").help_text
        + " Leave blank to keep the one saved.",
    )

    class Meta:
        model = OwnerNotifier
        fields = ["name", "kind", "target", "secret", "events", "batch_seconds", "enabled"]

    def clean_secret(self) -> str:
        return self.cleaned_data.get("secret") or (self.instance.secret if self.instance.pk else "")


def notice_state(key: str) -> str:
    """What really happened to one notification, in words, from its outbox row."""
    return message_state(key, waiting="Waiting to be sent") or "—"


@admin.register(OwnerNotifier)
class OwnerNotifierAdmin(admin.ModelAdmin):
    form = OwnerNotifierForm
    list_display = ["name", "kind", "events_list", "batch_seconds", "enabled", "latest"]
    list_filter = ["kind", "enabled"]
    actions = ["send_test"]
    readonly_fields = ["recent"]

    def _owner(self, request: HttpRequest) -> bool:
        return is_owner(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._owner(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._owner(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._owner(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._owner(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._owner(request)

    @admin.display(description="Events")
    def events_list(self, obj: OwnerNotifier) -> str:
        return ", ".join(str(NoticeKind(kind).label) for kind in obj.events) or "none (off)"

    @admin.display(description="Latest message")
    def latest(self, obj: OwnerNotifier) -> str:
        return notice_state(obj.latest_message_key)

    @admin.display(description="Recent messages")
    def recent(self, obj: OwnerNotifier) -> str | SafeString:
        if not obj.pk:
            return "—"
        batches = NoticeBatch.objects.filter(notifier=obj)[:10]
        lines = []
        for batch in batches:
            items = batch.items.count()
            opened = f"{timezone.localtime(batch.opened_at):%Y-%m-%d %H:%M}"
            state = (
                notice_state(batch.message_key)
                if batch.status == NoticeBatch.Status.CLOSED
                else f"collecting until {timezone.localtime(batch.due_at):%H:%M:%S}"
            )
            lines.append(f"{opened}: {items} event(s) — {state}")
        if not lines:
            return "None yet."
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    @admin.action(description="Send a test message")
    def send_test(self, request: HttpRequest, queryset: QuerySet[OwnerNotifier]) -> None:
        with transaction.atomic():
            for notifier in queryset:
                notifier_test(notifier=notifier)
        self.message_user(
            request,
            f"Test message queued for {queryset.count()} destination(s); its state shows here.",
            messages.SUCCESS,
        )
