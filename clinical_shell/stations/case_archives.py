"""Cases as the bridge carries them: each built bundle packed once into a content-addressed tar.

A station asks for a case by the archive's sha256 (``bridge.case_archive``); recordings name
the bundle's own content hash. `CaseArchive` rows tie the two, so a result's case can be found
again for replay whichever hash it names.
"""

import json
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from bridge.case_archive import pack_case
from clinical_shell.stations import selectors
from clinical_shell.stations.models import CaseArchive


class CaseNotFoundError(Exception):
    """No built case bundle has this content hash."""


def archive_for_content_hash(content_hash: str) -> CaseArchive:
    """The archive of the bundle whose content hash is `content_hash` (packed on first use).

    Packing reads the whole bundle (tens of MB for a real case): it happens once per bundle,
    when a session on it is first started, not on every request."""
    existing = CaseArchive.objects.filter(content_hash=content_hash).order_by("-id").first()
    if existing is not None and Path(existing.path).is_file():
        return existing
    bundle = selectors.case_path_for_hash(content_hash)
    if bundle is None:
        raise CaseNotFoundError(content_hash)
    return archive_for_bundle(bundle, content_hash=content_hash)


def archive_for_bundle(bundle: Path, *, content_hash: str | None = None) -> CaseArchive:
    """Pack the case bundle directory `bundle` (if not already) and record its archive."""
    if content_hash is None:
        content_hash = str(json.loads((bundle / "case.json").read_text())["content_hash"])
    archive_hash, path = pack_case(bundle, Path(settings.OSTEON_CASE_ARCHIVE_ROOT))
    try:
        with transaction.atomic():
            row, _ = CaseArchive.objects.update_or_create(
                archive_hash=archive_hash,
                defaults={
                    "content_hash": content_hash,
                    "path": str(path),
                    "size_bytes": path.stat().st_size,
                    "bundle_path": str(bundle),
                },
            )
    except IntegrityError:
        row = CaseArchive.objects.get(archive_hash=archive_hash)
    return row
