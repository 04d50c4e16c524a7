"""Reads of stations, sessions and results for pages, the API, the bridge and other apps.

`verified_scores` is the one door for training and credentialing: only results whose replay
reproduced the signed final-state hash count.
"""

import json
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from clinical_shell.imaging.models import SimulationCase
from clinical_shell.stations.models import (
    CaseArchive,
    EnrolmentCode,
    RefusedMessage,
    SessionResult,
    Station,
    StationSession,
)

# built demo and training cases (`make run` builds assets/cases/demo-lumbar)
ASSET_CASE_DIR = Path(__file__).resolve().parents[2] / "assets" / "cases"


def presence_of(station: Station, *, now: datetime | None = None) -> str:
    """online / busy / offline: offline when the bridge said so (`mark_offline`), or when the
    station has been silent for OSTEON_STATION_OFFLINE_AFTER_S (the bridge itself may be down)."""
    if (
        station.is_revoked
        or station.last_contact_at is None
        or station.presence == Station.Presence.OFFLINE
    ):
        return Station.Presence.OFFLINE
    now = now or timezone.now()
    silent_s = (now - station.last_contact_at).total_seconds()
    if silent_s > settings.OSTEON_STATION_OFFLINE_AFTER_S:
        return Station.Presence.OFFLINE
    if station.current_session_id is not None:
        return Station.Presence.BUSY
    return Station.Presence.ONLINE


def stations_at(institution_ids: list[int]) -> QuerySet[Station]:
    return Station.objects.filter(institution_id__in=institution_ids).select_related(
        "institution", "signed_in_user__person", "current_session__user__person"
    )


def station_for_key(curve_public_key: str) -> Station | None:
    """The enrolled (not revoked) station with this CURVE key, or None: asked on every message,
    so a revocation cuts the station off at its next message."""
    return (
        Station.objects.select_related("institution")
        .filter(curve_public_key=curve_public_key, status=Station.Status.ENROLLED)
        .first()
    )


def enrolment_codes_at(institution_ids: list[int]) -> QuerySet[EnrolmentCode]:
    return EnrolmentCode.objects.filter(institution_id__in=institution_ids).select_related(
        "institution", "created_by__person", "used_by_station"
    )


def sessions_of_station(station_id: int, visible: Q, *, limit: int = 20) -> list[StationSession]:
    """The station's latest sessions among those `visible` (an access filter)."""
    return list(
        StationSession.objects.filter(visible, station_id=station_id)
        .select_related("user__person", "result")
        .order_by("-created_at", "-id")[:limit]
    )


def refusals_of_station(station_id: int, *, limit: int = 20) -> list[RefusedMessage]:
    """The latest messages from the station the shell refused (with their reasons)."""
    return list(
        RefusedMessage.objects.filter(station_id=station_id).order_by("-received_at", "-id")[:limit]
    )


def session_rows(sessions: QuerySet[StationSession]) -> QuerySet[StationSession]:
    return sessions.select_related("station__institution", "user__person", "result").order_by(
        "-created_at", "-id"
    )


def result_rows(results: QuerySet[SessionResult]) -> QuerySet[SessionResult]:
    return results.select_related("station", "user__person", "session").order_by(
        "-received_at", "-id"
    )


def queued_sessions(station_id: int) -> QuerySet[StationSession]:
    """Sessions started from the shell that the station has not confirmed yet, oldest first."""
    return (
        StationSession.objects.filter(
            station_id=station_id,
            origin=StationSession.Origin.SHELL,
            state=StationSession.State.QUEUED,
        )
        .select_related("user")
        .order_by("created_at", "id")
    )


def verified_scores(
    user: User, *, scenario: str | None = None, since: datetime | None = None
) -> QuerySet[SessionResult]:
    """The user's results that count: verified by replay, on a scenario's own trajectory.
    Pending and rejected never count, nor does a rehearsal of the surgeon's own plan (scored
    against a path the surgeon chose)."""
    results = SessionResult.objects.filter(
        user_id=user.pk, verification=SessionResult.Verification.VERIFIED, plan_digest=""
    )
    if scenario is not None:
        results = results.filter(scenario=scenario)
    if since is not None:
        results = results.filter(received_at__gte=since)
    return results.order_by("-received_at", "-id")


def case_path_for_hash(content_hash: str) -> Path | None:
    """The built case bundle directory whose content hash is `content_hash`, or None.

    Cases built from patients' CT (imaging) come first, then the built demo/training cases in
    assets/cases. The bundle's own hash is checked when it is loaded (a changed bundle is refused
    there), so this only finds the directory.
    """
    case = (
        SimulationCase.objects.filter(content_hash=content_hash)
        .order_by("-created_at")
        .values_list("path", flat=True)
        .first()
    )
    if case is not None and (Path(case) / "case.json").is_file():
        return Path(case)
    for path, digest in asset_cases():
        if digest == content_hash:
            return path
    return None


def patient_case_for_hash(content_hash: str) -> SimulationCase | None:
    """The patient case with this hash (reading it is patient data: use imaging's access_case)."""
    return SimulationCase.objects.filter(content_hash=content_hash).order_by("-created_at").first()


def asset_cases() -> list[tuple[Path, str]]:
    """(bundle directory, content hash) of the built cases in assets/cases, by name."""
    found = []
    if not ASSET_CASE_DIR.is_dir():
        return []
    for meta_path in sorted(ASSET_CASE_DIR.glob("*/case.json")):
        try:
            digest = json.loads(meta_path.read_text())["content_hash"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a half-written or foreign directory is not a case
        found.append((meta_path.parent, str(digest)))
    return found


def archive_by_hash(archive_hash: str) -> CaseArchive | None:
    """The packed case a station asks for by hash (None when this shell never packed it)."""
    return CaseArchive.objects.filter(archive_hash=archive_hash).first()


def known_cases() -> list[tuple[str, str]]:
    """(name, content hash) of the cases a session can be started on without patient access:
    the built demo/training cases, and cases already packed for stations."""
    cases = {digest: path.name for path, digest in asset_cases()}
    patient_cases = SimulationCase.objects.values("content_hash")
    packed = (
        CaseArchive.objects.exclude(content_hash__in=patient_cases)
        .order_by("-id")
        .values_list("content_hash", "bundle_path")[:50]
    )
    for content_hash, bundle in packed:
        cases.setdefault(content_hash, Path(bundle).name)
    return sorted((name, digest) for digest, name in cases.items())


def judged_results(
    user: User, *, scenario: str | None = None, since: datetime | None = None
) -> QuerySet[SessionResult]:
    """The user's results whose replay has spoken (verified or rejected), oldest first: a
    training module's attempts (rehearsals of a plan are not). Only `verified_scores` count
    as scores."""
    results = SessionResult.objects.filter(
        user_id=user.pk,
        plan_digest="",
        verification__in=[
            SessionResult.Verification.VERIFIED,
            SessionResult.Verification.REJECTED,
        ],
    )
    if scenario is not None:
        results = results.filter(scenario=scenario)
    if since is not None:
        results = results.filter(received_at__gte=since)
    return results.order_by("received_at", "id")


def archive_hashes_of(content_hash: str) -> QuerySet[CaseArchive, str]:
    """The archive hashes (what results name) of the case bundle with this content hash, as a
    subquery: a verified result's case always has its archive (the replay found the case so)."""
    return CaseArchive.objects.filter(content_hash=content_hash).values_list(
        "archive_hash", flat=True
    )
