"""`flush` that test runs can use although the audit table refuses DELETE and TRUNCATE.

Django's transactional tests empty every table with `flush` after each test; the audit triggers
(migration 0002) rightly refuse that. Under pytest only, the triggers are set aside for the flush
and put back afterwards. Anywhere else `flush` keeps refusing to empty the audit log.
"""

from typing import Any

from django.conf import settings
from django.core.management.commands.flush import Command as DjangoFlush
from django.db import connections

from clinical_shell.audit.triggers import triggers_set_aside


class Command(DjangoFlush):
    def handle(self, **options: Any) -> None:
        if not getattr(settings, "RUNNING_TESTS", False):
            super().handle(**options)
            return
        with triggers_set_aside(connections[options["database"]]):
            super().handle(**options)
