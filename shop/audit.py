"""The audit log of sensitive changes: who changed what and when, field by field.

Two ways in, both ending in one ``AuditEntry`` row per change:

- ``audit_track(Model, …)`` / ``audit_track_m2m(Model, field)``: every save, delete or
  many-to-many change of a tracked model is recorded through Django's model signals, whichever
  path made it (an admin form, a list edit, a shell). Each app names its own sensitive models in
  its ``AppConfig.ready``: payment, risk and commission settings, commission rates, users and
  their groups. A bulk ``QuerySet.update`` sends no signal, so code that changes a tracked model
  that way records the change itself.
- ``audit_record(…)``: services that act for a known actor write their row directly, inside
  their own transaction (withdrawal decisions, key reveals), so the change and its record
  commit or roll back together.

The actor is the one a service names, else the user logged in to the request in progress
(``AuditActorMiddleware`` keeps it in a context variable), else "system" (migrations, tasks,
commands). A secret never enters the log: a field declared secret (a password hash) shows only
that it changed, as ``"[secret]"``. This module sits in the catalog layer, below every app that
writes to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.http import HttpRequest, HttpResponse

from core.client_ip import client_ip
from shop.models import AuditEntry

SECRET = "[secret]"  # noqa: S105 - the placeholder shown instead of a secret
_BEFORE = "_audit_before"
_SKIP = object()
_current_request: ContextVar[HttpRequest | None] = ContextVar("kami_audit_request", default=None)


class AuditActorMiddleware:
    """Remembers the request being served, so a model signal knows who made the change."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)


def _who(actor: Any) -> tuple[Any, str, str | None]:
    request = _current_request.get()
    ip = client_ip(request) if request is not None else None
    if not getattr(actor, "pk", None) and request is not None:
        actor = getattr(request, "user", None)
    if getattr(actor, "pk", None) and getattr(actor, "is_authenticated", False):
        return actor, actor.get_username(), ip
    return None, ("anonymous" if request is not None else "system"), ip


def plain(value: Any) -> Any:
    """A field value as JSON can keep it and a person can read it."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def audit_record(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    changes: dict[str, Any] | None = None,
    note: str = "",
    actor: Any = None,
) -> AuditEntry:
    """Append one row to the audit log. ``changes`` is ``{field: [before, after]}`` with
    secrets already replaced by ``SECRET`` (the tracked models' signals do that)."""
    user, name, ip = _who(actor)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    return AuditEntry.objects.create(
        actor=user,
        actor_name=name[:150],
        client_ip=ip,
        action=action,
        object_type=object_type[:100],
        object_id=str(object_id)[:64],
        object_repr=object_repr[:200],
        changes=changes or {},
        note=note[:300],
    )


# --- Tracked models ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tracked:
    fields: tuple[models.Field, ...]
    secret: frozenset[str]


_tracked: dict[type[models.Model], _Tracked] = {}


def _same(field: models.Field, before: Any, after: Any) -> bool:
    try:
        return field.to_python(before) == field.to_python(after)
    except Exception:  # a value the field cannot parse is, at least, not the same value
        return before == after


def _shown(spec: _Tracked, field: models.Field, value: Any) -> Any:
    if field.name in spec.secret:
        return SECRET if value not in (None, "") else value
    return plain(value)


def _on_pre_save(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    spec = _tracked.get(sender)
    if spec is None or kwargs.get("raw"):
        return
    update_fields = kwargs.get("update_fields")
    fields = spec.fields
    if update_fields is not None:
        fields = tuple(f for f in fields if f.name in update_fields or f.attname in update_fields)
        if not fields:  # e.g. ``last_login`` on every login: nothing this log is about
            instance.__dict__[_BEFORE] = _SKIP
            return
    before = None
    if instance.pk is not None:
        before = (
            sender._base_manager.filter(pk=instance.pk).values(*(f.attname for f in fields)).first()
        )
    instance.__dict__[_BEFORE] = (before, fields)


def _on_post_save(
    sender: type[models.Model], instance: models.Model, created: bool, **kwargs: Any
) -> None:
    spec = _tracked.get(sender)
    if spec is None or kwargs.get("raw"):
        return
    stashed = instance.__dict__.pop(_BEFORE, (None, spec.fields))
    if stashed is _SKIP:
        return
    before, fields = stashed
    changes: dict[str, Any] = {}
    for field in fields:
        after = getattr(instance, field.attname)
        if before is None:
            if after not in (None, ""):
                changes[field.name] = [None, _shown(spec, field, after)]
        elif not _same(field, before[field.attname], after):
            changes[field.name] = [
                _shown(spec, field, before[field.attname]),
                _shown(spec, field, after),
            ]
    if before is not None and not changes:
        return
    action = AuditEntry.Action.CREATE if before is None else AuditEntry.Action.UPDATE
    audit_record(action=action, obj=instance, changes=changes)


def _on_post_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    spec = _tracked.get(sender)
    if spec is None:
        return
    changes = {
        f.name: [_shown(spec, f, getattr(instance, f.attname)), None]
        for f in spec.fields
        if getattr(instance, f.attname) not in (None, "")
    }
    audit_record(action=AuditEntry.Action.DELETE, obj=instance, changes=changes)


def audit_track(
    model: type[models.Model],
    *,
    fields: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    secret: Iterable[str] = (),
) -> None:
    """Record every create, change and delete of ``model``: ``fields`` (default: all but the
    primary key and automatic timestamps), with ``secret`` ones shown only as changed."""
    excluded = set(exclude)
    concrete = [
        f
        for f in model._meta.concrete_fields
        if not f.primary_key
        and not getattr(f, "auto_now", False)
        and not getattr(f, "auto_now_add", False)
    ]
    if fields is not None:
        wanted = list(fields)
        by_name = {f.name: f for f in concrete}
        concrete = [by_name[name] for name in wanted]
    _tracked[model] = _Tracked(
        fields=tuple(f for f in concrete if f.name not in excluded), secret=frozenset(secret)
    )
    uid = f"kami-audit-{model._meta.label_lower}"
    pre_save.connect(_on_pre_save, sender=model, dispatch_uid=uid)
    post_save.connect(_on_post_save, sender=model, dispatch_uid=uid)
    post_delete.connect(_on_post_delete, sender=model, dispatch_uid=uid)


@dataclass(frozen=True)
class _TrackedM2M:
    model: type[models.Model]
    field_name: str
    label: tuple[str, ...]  # lookups whose values, joined by ".", name a related row


_tracked_m2m: dict[type[models.Model], _TrackedM2M] = {}


def _labels(spec: _TrackedM2M, owner: models.Model) -> list[str]:
    rows = getattr(owner, spec.field_name).values_list(*spec.label)
    return sorted(".".join(str(part) for part in row) for row in rows)


def _on_m2m_changed(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    spec = _tracked_m2m.get(sender)
    if spec is None:
        return
    action: str = kwargs["action"]
    stash = instance.__dict__.setdefault("_audit_m2m", {})
    if action in ("pre_add", "pre_remove", "pre_clear"):
        if not kwargs["reverse"]:
            owners = [instance]
        elif kwargs["pk_set"] is not None:
            owners = list(spec.model._base_manager.filter(pk__in=kwargs["pk_set"]))
        else:
            owners = list(spec.model._base_manager.filter(**{spec.field_name: instance}))
        stash[(sender, action[4:])] = [(owner, _labels(spec, owner)) for owner in owners]
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    for owner, before in stash.pop((sender, action[5:]), []):
        after = _labels(spec, owner)
        if after != before:
            audit_record(
                action=AuditEntry.Action.UPDATE,
                obj=owner,
                changes={spec.field_name: [before, after]},
            )


def audit_track_m2m(
    model: type[models.Model], field_name: str, *, label: tuple[str, ...] = ("name",)
) -> None:
    """Record every change of ``model.field_name`` (either side), as the related rows'
    labels before and after, on the ``model`` row."""
    through = getattr(model, field_name).through
    _tracked_m2m[through] = _TrackedM2M(model=model, field_name=field_name, label=label)
    m2m_changed.connect(
        _on_m2m_changed, sender=through, dispatch_uid=f"kami-audit-m2m-{through._meta.label}"
    )


def audit_track_removals_by_people(
    model: type[models.Model], *, fields: Iterable[str], note: str
) -> None:
    """Record deletes of ``model`` made by a person in a request (the owner unlocking a login,
    say), not the ones its library makes on its own: expired login attempts are cleaned up
    without anyone deciding anything, and logging those would bury the unlocks."""
    names = tuple(fields)

    def on_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
        request = _current_request.get()
        if request is None or not getattr(request.user, "is_authenticated", False):
            return
        changes = {name: [plain(getattr(instance, name)), None] for name in names}
        audit_record(action=AuditEntry.Action.DELETE, obj=instance, changes=changes, note=note)

    post_delete.connect(
        on_delete, sender=model, weak=False, dispatch_uid=f"kami-audit-rm-{model._meta.label_lower}"
    )
