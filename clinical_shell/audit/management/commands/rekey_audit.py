"""`manage.py rekey_audit`: move a chain written before OSTEON_AUDIT_KEY onto the keyed chain, once.

The old chain is checked first with its unkeyed hashes: a chain that is already broken is not
re-keyed (that would launder the tampering). Then every event's link and hash are recomputed
under the key, in one transaction, and a signed checkpoint is written. A chain that already
verifies under the key is left alone.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from clinical_shell.audit.checkpoints import write_checkpoint
from clinical_shell.audit.models import GENESIS_HASH, AuditEvent
from clinical_shell.audit.selectors import verify_chain
from clinical_shell.audit.triggers import triggers_set_aside


class Command(BaseCommand):
    help = "Re-key an unkeyed (SHA-256) audit chain with OSTEON_AUDIT_KEY (once) / 审计链改用密钥"

    def handle(self, *args: Any, **options: Any) -> None:
        if verify_chain().intact:
            self.stdout.write("审计链已使用密钥 / the chain already verifies under the key")
            return
        expected_prev = GENESIS_HASH
        for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
            if event.prev_hash != expected_prev or event.legacy_hash() != event.entry_hash:
                raise CommandError(
                    f"旧审计链在第 {event.id} 条断开，不改写 / the unkeyed chain is broken at "
                    f"event {event.id}: not re-keyed (investigate first)"
                )
            expected_prev = event.entry_hash
        rekeyed = 0
        with transaction.atomic(), triggers_set_aside(connection):
            prev = GENESIS_HASH
            table = AuditEvent._meta.db_table
            last_id = 0
            with connection.cursor() as cursor:
                # batches by id, not a live cursor over the rows being rewritten
                while batch := list(
                    AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:2000]
                ):
                    for event in batch:
                        event.prev_hash = prev
                        new_hash = event.compute_hash()
                        cursor.execute(
                            f"UPDATE {table} SET prev_hash = %s, entry_hash = %s WHERE id = %s",
                            [prev, new_hash, event.id],
                        )
                        prev = new_hash
                        rekeyed += 1
                    last_id = batch[-1].id
        write_checkpoint()
        self.stdout.write(f"已改用密钥 / re-keyed {rekeyed} events; checkpoint written")
