"""`flush` that test runs can use although the audit table refuses DELETE and TRUNCATE.

Django's transactional tests empty every table with `flush` after each test; the audit triggers
(migration 0002) rightly refuse that. Under pytest only, the triggers are set aside for the flush
and put back afterwards. Anywhere else `flush` keeps refusing to empty the audit log.
"""

from typing import Any

from django.conf import settings
from django.core.management.commands.flush import Command as DjangoFlush
from django.db import connections

# the SQLite triggers of migration 0002, repeated: migrations must not import app code
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only (UPDATE refused)'); END;",
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only (DELETE refused)'); END;",
)


class Command(DjangoFlush):
    def handle(self, **options: Any) -> None:
        if not getattr(settings, "RUNNING_TESTS", False):
            super().handle(**options)
            return
        connection = connections[options["database"]]
        vendor = connection.vendor
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            elif vendor == "sqlite":
                cursor.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
                cursor.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
        try:
            super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                if vendor == "postgresql":
                    cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
                elif vendor == "sqlite":
                    for sql in _SQLITE_TRIGGERS:
                        cursor.execute(sql)
