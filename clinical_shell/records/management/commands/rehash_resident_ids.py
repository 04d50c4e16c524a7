"""`manage.py rehash_resident_ids`: recompute the resident-ID search digests under the current key.

Run once after OSTEON_ID_HMAC_KEY rotates (docs/security.md, Secrets): until then, searching
by ID number finds no patient whose digest was made with the old key. Idempotent.
"""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from clinical_shell.audit import services as audit
from clinical_shell.records.identity import resident_id_digest
from clinical_shell.records.models import Patient

_BATCH = 1000


class Command(BaseCommand):
    help = "Recompute resident-ID digests after the ID-hash key rotates / 重算身份证号检索摘要"

    def handle(self, *args: Any, **options: Any) -> None:
        changed = 0
        last_id = 0
        while True:
            batch = list(
                Patient.objects.filter(id__gt=last_id)
                .exclude(resident_id="")
                .order_by("id")
                .only("id", "resident_id", "resident_id_digest")[:_BATCH]
            )
            if not batch:
                break
            stale = []
            for patient in batch:
                digest = resident_id_digest(patient.resident_id)
                if patient.resident_id_digest != digest:
                    patient.resident_id_digest = digest
                    stale.append(patient)
            with transaction.atomic():
                Patient.objects.bulk_update(stale, ["resident_id_digest"])
            changed += len(stale)
            last_id = batch[-1].id
        audit.record(actor=None, action="records.resident_id_rehash", detail={"changed": changed})
        self.stdout.write(f"已重算 / recomputed {changed} resident-ID digests")
