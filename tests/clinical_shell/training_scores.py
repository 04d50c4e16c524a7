"""Score rows for the training and credentialing tests.

The rules under test read results through `stations.selectors.verified_scores`; how a result
becomes verified (a bit-for-bit replay) is tested in tests/clinical_shell/stations. These
helpers therefore write the result rows directly, in the state under test (verified, pending,
rejected), on a station enrolled through the stations services.

Import as `from training_scores import ...` (pytest puts tests/clinical_shell on sys.path).
"""

import uuid
from datetime import timedelta

import nacl.signing
import zmq
from django.contrib.auth.models import User
from django.utils import timezone

from clinical_shell.network.models import Institution
from clinical_shell.stations import services as stations
from clinical_shell.stations.models import CaseArchive, SessionResult, Station, StationSession

CASE = "sha256:" + "c4" * 32


def enrolled_station(institution: Institution) -> Station:
    issued = stations.create_enrolment_code(actor=None, institution=institution, room="技能中心")
    public, _secret = zmq.curve_keypair()
    return stations.enroll_station(
        code=issued.code,
        curve_public_key=public.decode(),
        signing_public_key=nacl.signing.SigningKey.generate().verify_key.encode().hex(),
        hostname="sim-test",
    )


def score_row(
    station: Station,
    user: User,
    *,
    score: float,
    scenario: str = "pedicle_pilot_hole",
    case: str = CASE,
    verification: str = SessionResult.Verification.VERIFIED,
    days_ago: float = 0,
    metrics: dict[str, float] | None = None,
    passed: bool | None = None,
) -> SessionResult:
    """One finished session and its result, received `days_ago` days ago."""
    uid = uuid.uuid4().hex
    # the case's archive as the replay found it (results name the archive's hash)
    archive, _ = CaseArchive.objects.get_or_create(
        archive_hash="sha256:archive-" + case[-8:],
        defaults={"content_hash": case, "path": "/nonexistent", "size_bytes": 0, "bundle_path": ""},
    )
    session = StationSession.objects.create(
        station=station,
        user=user,
        case_hash=archive.archive_hash,
        case_content_hash=case,
        scenario=scenario,
        origin=StationSession.Origin.STATION,
        state=StationSession.State.FINISHED,
        uid=uid,
    )
    row = SessionResult.objects.create(
        message_id=uid,
        session=session,
        station=station,
        user=user,
        case_hash=session.case_hash,
        scenario=scenario,
        recording_sha256="00" * 32,
        recording_path="/nonexistent/test-row",
        metrics=metrics or {"time_s": 60.0, "breach_mm": 0.0},
        score=score,
        passed=score >= 70 if passed is None else passed,
        final_state_hash="sha256:" + "ab" * 32,
        signature="test-row",
        verification=verification,
    )
    when = timezone.now() - timedelta(days=days_ago)
    SessionResult.objects.filter(pk=row.pk).update(received_at=when, ended_at=when)
    row.refresh_from_db()
    return row
