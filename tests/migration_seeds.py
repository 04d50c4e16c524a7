"""Keeps the rows the migrations seed (indicator definitions, techniques, referral criteria...)
present for every test, also after a transactional test's flush emptied the tables.

Serially pytest-django runs transactional tests last, so nobody noticed the flush; on xdist
workers a worker runs a transactional test and then more ordinary ones, which found those
tables empty. Django's own ``serialized_rollback`` restores before a test, not after it, and
would not help the ordinary tests that follow.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core import serializers
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from pytest_django.fixtures import validate_django_db

# Rebuilt by Django's post_migrate signal after every flush; restoring them too would collide.
_REBUILT_AFTER_FLUSH = {"contenttypes", "auth"}
_TRANSACTIONAL_FIXTURES = {"transactional_db", "live_server", "django_db_reset_sequences"}

_snapshot: list[str] = []


def _seeded_models() -> list[type]:
    return [
        model
        for model in apps.get_models()
        if model._meta.app_label not in _REBUILT_AFTER_FLUSH
        and model._meta.managed
        and not model._meta.proxy
        and router.allow_migrate_model(DEFAULT_DB_ALIAS, model)
    ]


def take_snapshot() -> int:
    """Serialise every row present right after migrating; returns how many."""
    rows = [obj for model in _seeded_models() for obj in model._base_manager.order_by("pk")]
    _snapshot[:] = [serializers.serialize("json", rows)] if rows else []
    return len(rows)


def restore_snapshot() -> None:
    if not _snapshot:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    with transaction.atomic(), connection.constraint_checks_disabled():
        tables = set()
        for obj in serializers.deserialize("json", _snapshot[0]):
            obj.save()
            tables.add(obj.object._meta.db_table)
        connection.check_constraints(table_names=sorted(tables))


def is_transactional(item: pytest.Item) -> bool:
    if _TRANSACTIONAL_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    marker = item.get_closest_marker("django_db")
    return marker is not None and validate_django_db(marker)[0]
