"""Results: a signed result takes effect once per message id; a tampered result, one signed with
another station's key, or one from an unknown user is refused with its reason recorded; the
score counts only after the replay of the recording reproduces the signed final-state hash."""

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from shell_personas import Network
from station_helpers import (
    EngineSession,
    EnrolledStation,
    StationPersonas,
    enrol,
    signed_result,
    with_changes,
)

from clinical_shell.audit.models import AuditEvent
from clinical_shell.jobs.models import Job
from clinical_shell.jobs.running import run_job
from clinical_shell.stations import case_archives, selectors, services
from clinical_shell.stations.models import RefusedMessage, SessionResult, StationSession
from clinical_shell.stations.tasks import VERIFY_RESULT


@pytest.fixture
def case_hash(enrolled: EnrolledStation, engine_session: EngineSession) -> str:
    """The archive hash stations use for the engine session's case (packed like the bridge)."""
    return case_archives.archive_for_bundle(engine_session.case_dir).archive_hash


def _shell_session(
    enrolled: EnrolledStation, people: StationPersonas, engine_session: EngineSession
) -> StationSession:
    return services.start_session_from_shell(
        actor=people.administrator,
        station=enrolled.station,
        case_content_hash=engine_session.content_hash,
        scenario="pedicle_pilot_hole",
        user=people.surgeon,
    )


def _result_for(
    enrolled: EnrolledStation,
    user: User,
    session_uid: str,
    case_hash: str,
    engine_session: EngineSession,
    **kw: Any,
) -> Any:
    return signed_result(
        enrolled,
        username=user.get_username(),
        session_id=session_uid,
        case_hash=case_hash,
        recording=kw.pop("recording", engine_session.recording),
        engine_result=kw.pop("engine_result", engine_session.result),
        **kw,
    )


def test_the_same_result_sent_twice_takes_effect_once(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    session = _shell_session(enrolled, people, engine_session)
    assert session.case_hash == case_hash
    result = _result_for(enrolled, people.surgeon, session.uid, case_hash, engine_session)
    message_id = uuid.uuid4().hex
    with django_capture_on_commit_callbacks(execute=True):
        first = services.accept_result(
            station=enrolled.station, message_id=message_id, result=result
        )
    second = services.accept_result(station=enrolled.station, message_id=message_id, result=result)
    assert not first.duplicate and second.duplicate
    assert second.result.pk == first.result.pk
    assert SessionResult.objects.count() == 1
    row = SessionResult.objects.get()
    assert row.verification == "pending" and row.session == session
    assert Path(row.recording_path).read_bytes() == engine_session.recording
    session.refresh_from_db()
    assert session.state == "finished"
    # one verification job queued, for this result
    job = Job.objects.get(kind=VERIFY_RESULT)
    assert job.payload == {"result_id": row.pk}
    assert AuditEvent.objects.filter(action="session_result.accept").count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"score": 100.0 - 1e-9},
        {"metrics": {"time_s": 1.0}},
        {"final_state_hash": "sha256:" + "0" * 64},
        {"username": "zhao.center.2"},
    ],
    ids=["score", "metric", "state-hash", "user"],
)
def test_a_tampered_result_is_refused_with_its_reason_recorded(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
    change: dict[str, Any],
) -> None:
    session = _shell_session(enrolled, people, engine_session)
    genuine = _result_for(enrolled, people.surgeon, session.uid, case_hash, engine_session)
    if "metrics" in change:
        change = {"metrics": {**genuine.metrics, **change["metrics"]}}
    tampered = with_changes(genuine, **change)
    message_id = uuid.uuid4().hex
    with pytest.raises(services.StationError) as refused:
        services.accept_result(station=enrolled.station, message_id=message_id, result=tampered)
    assert refused.value.code == "bad_signature"
    assert not SessionResult.objects.exists()
    refusal = RefusedMessage.objects.get()
    assert (refusal.code, refusal.message_id, refusal.station) == (
        "bad_signature",
        message_id,
        enrolled.station,
    )
    assert "签名" in refusal.reason
    event = AuditEvent.objects.get(action="session_result.refuse")
    assert event.outcome == "failure" and event.detail["code"] == "bad_signature"
    # the genuine result still goes in afterwards
    services.accept_result(station=enrolled.station, message_id=uuid.uuid4().hex, result=genuine)
    assert SessionResult.objects.count() == 1


def test_a_result_signed_by_another_stations_key_is_refused(
    enrolled: EnrolledStation,
    people: StationPersonas,
    shell_network: Network,
    engine_session: EngineSession,
    case_hash: str,
) -> None:
    other = enrol(people.administrator, shell_network.center, room="另一间")
    session = _shell_session(enrolled, people, engine_session)
    forged = _result_for(
        enrolled, people.surgeon, session.uid, case_hash, engine_session, key=other.keys.signing
    )
    with pytest.raises(services.StationError, match="签名"):
        services.accept_result(station=enrolled.station, message_id=uuid.uuid4().hex, result=forged)
    # and a result naming this station sent over the other station's connection
    own = _result_for(enrolled, people.surgeon, session.uid, case_hash, engine_session)
    with pytest.raises(services.StationError) as wrong:
        services.accept_result(station=other.station, message_id=uuid.uuid4().hex, result=own)
    assert wrong.value.code == "wrong_station"
    assert not SessionResult.objects.exists()
    assert sorted(RefusedMessage.objects.values_list("code", flat=True)) == [
        "bad_signature",
        "wrong_station",
    ]


def test_a_result_for_someone_never_signed_in_at_the_station_is_refused(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
) -> None:
    result = _result_for(enrolled, people.colleague, uuid.uuid4().hex, case_hash, engine_session)
    with pytest.raises(services.StationError) as refused:
        services.accept_result(station=enrolled.station, message_id=uuid.uuid4().hex, result=result)
    assert refused.value.code == "not_signed_in"
    # after a sign-in there, the station's own session counts as theirs
    services.sign_in_at_station(
        station=enrolled.station,
        username=people.colleague.get_username(),
        secret="Osteon-test-2026!",
        method="password",
    )
    accepted = services.accept_result(
        station=enrolled.station, message_id=uuid.uuid4().hex, result=result
    )
    assert accepted.result.user == people.colleague
    assert accepted.result.session is not None and accepted.result.session.origin == "station"


def test_a_verified_replay_makes_the_score_count(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
) -> None:
    session = _shell_session(enrolled, people, engine_session)
    result = _result_for(enrolled, people.surgeon, session.uid, case_hash, engine_session)
    accepted = services.accept_result(
        station=enrolled.station, message_id=uuid.uuid4().hex, result=result
    )
    assert not selectors.verified_scores(people.surgeon).exists()  # pending does not count
    verified = services.verify_result_by_replay(result_id=accepted.result.pk)
    assert verified.verification == "verified", verified.rejection_reason
    assert verified.replay["state_hash"] == engine_session.result["state_hash"]
    assert list(selectors.verified_scores(people.surgeon, scenario="pedicle_pilot_hole")) == [
        verified
    ]
    assert not selectors.verified_scores(people.surgeon, scenario="burr_lesion").exists()
    assert not selectors.verified_scores(people.colleague).exists()
    event = AuditEvent.objects.get(action="session_result.verify")
    assert event.outcome == "success"


def _altered_recording(engine_session: EngineSession, tmp_path: Path) -> bytes:
    """The same recording with its inputs changed and their hash recomputed: a well-formed
    recording whose replay no longer gives the signed final state."""
    from sim_core.replay import _inputs_digest

    src = tmp_path / "src.npz"
    src.write_bytes(engine_session.recording)
    with np.load(src) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        inputs = z["inputs"].copy()
    inputs["x_mm"][len(inputs) // 2 :] += 0.5
    meta["inputs_sha256"] = _inputs_digest(inputs)
    dst = tmp_path / "altered.npz"
    blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(dst, meta=blob, inputs=inputs)
    return dst.read_bytes()


def test_a_recording_whose_replay_differs_is_rejected_with_why(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
    tmp_path: Path,
) -> None:
    session = _shell_session(enrolled, people, engine_session)
    # signed by the station itself: the signature is good, the recording does not back it
    result = _result_for(
        enrolled,
        people.surgeon,
        session.uid,
        case_hash,
        engine_session,
        recording=_altered_recording(engine_session, tmp_path),
    )
    accepted = services.accept_result(
        station=enrolled.station, message_id=uuid.uuid4().hex, result=result
    )
    rejected = services.verify_result_by_replay(result_id=accepted.result.pk)
    assert rejected.verification == "rejected"
    assert "final state hash" in rejected.rejection_reason
    assert not selectors.verified_scores(people.surgeon).exists()
    event = AuditEvent.objects.get(action="session_result.verify")
    assert event.outcome == "failure" and "final state hash" in event.reason


def test_a_damaged_recording_is_rejected(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
) -> None:
    session = _shell_session(enrolled, people, engine_session)
    damaged = bytearray(engine_session.recording)
    damaged[len(damaged) // 2] ^= 0xFF
    result = _result_for(
        enrolled, people.surgeon, session.uid, case_hash, engine_session, recording=bytes(damaged)
    )
    accepted = services.accept_result(
        station=enrolled.station, message_id=uuid.uuid4().hex, result=result
    )
    rejected = services.verify_result_by_replay(result_id=accepted.result.pk)
    assert rejected.verification == "rejected"
    assert "cannot be replayed" in rejected.rejection_reason


@pytest.mark.django_db(transaction=True)
def test_the_verification_job_runs_in_the_background_queue(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
) -> None:
    session = _shell_session(enrolled, people, engine_session)
    result = _result_for(enrolled, people.surgeon, session.uid, case_hash, engine_session)
    accepted = services.accept_result(
        station=enrolled.station, message_id=uuid.uuid4().hex, result=result
    )
    job = Job.objects.get(kind=VERIFY_RESULT)
    assert job.heavy
    run_job(job.pk)  # what the worker's wake-up does
    accepted.result.refresh_from_db()
    assert accepted.result.verification == "verified", accepted.result.rejection_reason
    job.refresh_from_db()
    assert job.status == "done"


def test_the_bridge_side_acknowledges_once_and_records_the_endpoints_refusals(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
) -> None:
    from bridge.shell_side import ResultRefusedError
    from clinical_shell.stations.bridge_side import DjangoShellSide

    side = DjangoShellSide()
    ref = side.station_for_key(enrolled.keys.curve_public)
    assert ref is not None
    session = _shell_session(enrolled, people, engine_session)
    [command] = side.pending_commands(ref)
    assert (command.session_id, command.case_hash) == (session.uid, case_hash)
    assert command.username == people.surgeon.get_username() and command.case_bytes > 0
    assert side.case_path(case_hash) is not None and side.case_path("sha256:" + "0" * 64) is None
    result = _result_for(enrolled, people.surgeon, session.uid, case_hash, engine_session)
    message_id = uuid.uuid4().hex
    first = side.accept_result(ref, message_id=message_id, result=result)
    again = side.accept_result(ref, message_id=message_id, result=result)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.status == "pending" and SessionResult.objects.count() == 1
    assert side.pending_commands(ref) == []
    # a result for someone else's session is refused by the shell, with the code the station gets
    other = _result_for(enrolled, people.colleague, session.uid, case_hash, engine_session)
    with pytest.raises(ResultRefusedError) as refused:
        side.accept_result(ref, message_id=uuid.uuid4().hex, result=other)
    assert refused.value.code == "not_signed_in"
    # what the endpoint itself refused (its own signature check) is recorded through the side
    side.refuse_result(
        ref, message_id="f" * 32, result=result, code="bad_signature", reason="tampered"
    )
    assert list(RefusedMessage.objects.order_by("id").values_list("code", flat=True)) == [
        "not_signed_in",
        "bad_signature",
    ]


def test_a_station_cannot_take_over_another_stations_session_id(
    enrolled: EnrolledStation,
    people: StationPersonas,
    shell_network: Network,
    engine_session: EngineSession,
    case_hash: str,
) -> None:
    session = _shell_session(enrolled, people, engine_session)
    other = enrol(people.administrator, shell_network.center, room="另一间")
    services.sign_in_at_station(
        station=other.station,
        username=people.surgeon.get_username(),
        secret="Osteon-test-2026!",
        method="password",
    )
    result = _result_for(other, people.surgeon, session.uid, case_hash, engine_session)
    with pytest.raises(services.StationError) as refused:
        services.accept_result(station=other.station, message_id=uuid.uuid4().hex, result=result)
    assert refused.value.code == "replayed"
    assert not SessionResult.objects.exists()
    assert RefusedMessage.objects.get().station == other.station


def test_a_result_for_another_scenario_cannot_end_a_shell_started_session(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
) -> None:
    session = _shell_session(enrolled, people, engine_session)  # pedicle_pilot_hole
    result = _result_for(
        enrolled, people.surgeon, session.uid, case_hash, engine_session, scenario="burr_lesion"
    )
    with pytest.raises(services.StationError) as refused:
        services.accept_result(station=enrolled.station, message_id=uuid.uuid4().hex, result=result)
    assert refused.value.code == "session_mismatch"
    assert not SessionResult.objects.exists()
    assert RefusedMessage.objects.get().code == "session_mismatch"


def test_a_replay_with_another_instrument_than_the_scenarios_is_rejected(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
    tmp_path: Path,
) -> None:
    # an honest recording, signed by the station, whose replay reproduces every figure, but
    # played with a thinner drill than the scenario prescribes
    from sim_core.case.bundle import load_bundle
    from sim_core.model import model_from_bundle
    from sim_core.replay import play, write_recording
    from sim_core.trajectories import scripted_rows

    model = model_from_bundle(
        load_bundle(engine_session.case_dir), "pedicle_pilot_hole", instrument="drill_2.5mm"
    )
    rows = scripted_rows(model, "expert")
    _state, played = play(model, rows)
    path = tmp_path / "thin-drill.npz"
    write_recording(
        path,
        model=model,
        rows=rows,
        result=played,
        case_path=engine_session.case_dir,
        device_name="scripted:expert",
    )
    session = _shell_session(enrolled, people, engine_session)
    result = _result_for(
        enrolled,
        people.surgeon,
        session.uid,
        case_hash,
        engine_session,
        recording=path.read_bytes(),
        engine_result=played.as_dict(),
    )
    accepted = services.accept_result(
        station=enrolled.station, message_id=uuid.uuid4().hex, result=result
    )
    rejected = services.verify_result_by_replay(result_id=accepted.result.pk)
    assert rejected.verification == "rejected"
    assert "drill_2.5mm" in rejected.rejection_reason
    assert not selectors.verified_scores(people.surgeon).exists()
