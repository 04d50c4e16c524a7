"""A plan sent with a session (a rehearsal): the protocol change stays compatible, the plan's
digest binds its trajectories to its case and is signed into the result, and a station refuses a
plan it cannot trust before it fetches anything or runs anything."""

import threading
import time
from pathlib import Path

import msgspec
import pytest
from bridge_helpers import Bridge

from bridge.messages import (
    MAX_PLAN_ELEMENTS,
    MAX_PLAN_LANDMARKS,
    MAX_PLAN_ZONES,
    MAX_ZONE_POINTS,
    LandmarkSpec,
    PlanElementSpec,
    PlanSpec,
    Result,
    StartSession,
    ZoneSpec,
    check_plan,
    decode,
    encode,
    plan_digest,
)
from bridge.signing import (
    SIGNING_TAG,
    SignatureInvalidError,
    new_signing_key,
    sign_result,
    signed_bytes,
    verify_result,
)
from bridge.station import StationIdentity, StationRunner

CASE = "sha256:" + "c" * 64


def _plan(case_hash: str = CASE, kind: str = "pedicle_screw", **changes: object) -> PlanSpec:
    elements = (
        PlanElementSpec(1, kind, (60.0, 60.0, 60.0), (60.0, 10.0, 48.0), 6.5),
        PlanElementSpec(2, "osteotomy_plane", (30.0, 30.0, 30.0), (30.0, 40.0, 30.0), 0.0),
    )
    plan = PlanSpec(
        plan_id=7,
        version=3,
        element_id=1,
        elements=elements,
        digest=plan_digest(case_hash, 7, 3, elements),
    )
    return msgspec.structs.replace(plan, **changes)  # type: ignore[arg-type]


def _command(plan: PlanSpec | None, session_id: str = "sess-plan") -> StartSession:
    return StartSession(
        session_id=session_id,
        case_hash=CASE,
        case_bytes=1000,
        scenario="pedicle_pilot_hole",
        username="surgeon",
        plan=plan,
    )


def _result(plan_digest_: str = "") -> Result:
    return Result(
        station_id="st-1",
        username="surgeon",
        session_id="sess-plan",
        case_hash=CASE,
        scenario="pedicle_pilot_hole",
        recording_hash="sha256:" + "a" * 64,
        metrics={"tip_offset_mm": 0.0},
        score=99.0,
        passed=True,
        final_state_hash="sha256:" + "b" * 64,
        ended_at=1796400000.0,
        signature="",
        recording=b"rec",
        plan_digest=plan_digest_,
    )


def test_a_session_without_a_plan_is_the_frame_an_older_station_knows() -> None:
    # no "plan" key on the wire: an older station (forbid_unknown_fields) still decodes it
    frame = encode(_command(None), seq=1)
    body = msgspec.msgpack.decode(frame)["body"]
    assert (
        "plan" not in body
        and "plan_digest" not in msgspec.msgpack.decode(encode(_result(), seq=1))["body"]
    )
    # a plan round-trips, and the digest covers case, plan id, version and every number
    plan = _plan()
    decoded = decode(encode(_command(plan), seq=2)).body
    assert isinstance(decoded, StartSession) and decoded.plan == plan
    assert check_plan(CASE, plan).element_id == 1
    moved = PlanElementSpec(1, "pedicle_screw", (60.0, 60.0, 60.5), (60.0, 10.0, 48.0), 6.5)
    assert plan_digest(CASE, 7, 3, (moved, plan.elements[1])) != plan.digest
    assert plan_digest(CASE, 7, 4, plan.elements) != plan.digest


@pytest.mark.parametrize(
    ("plan", "says"),
    [
        (_plan(case_hash="sha256:" + "d" * 64), "digest does not match"),  # another case's plan
        (_plan(version=4), "digest does not match"),  # a changed plan under the old digest
        (_plan(kind="bone_graft"), "cannot be rehearsed"),  # digest fine, kind unknown
        (_plan(element_id=99), "is not (once) in the plan"),
        (_plan(elements=()), "a plan holds 1 to"),
    ],
)
def test_a_plan_the_station_cannot_trust_is_refused_with_a_clear_error(
    plan: PlanSpec, says: str
) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        check_plan(CASE, plan)


def test_a_non_finite_element_is_refused_even_with_a_matching_digest() -> None:
    bad = (PlanElementSpec(1, "drill_hole", (float("nan"), 0.0, 0.0), (1.0, 2.0, 3.0), 3.2),)
    plan = PlanSpec(7, 1, 1, bad, plan_digest(CASE, 7, 1, bad))
    with pytest.raises(ValueError, match="not valid numbers"):
        check_plan(CASE, plan)


def _with_annotations(
    zones: tuple[ZoneSpec, ...], landmarks: tuple[LandmarkSpec, ...] = ()
) -> PlanSpec:
    plan = _plan()
    digest = plan_digest(CASE, 7, 3, plan.elements, zones, landmarks)
    return msgspec.structs.replace(plan, zones=zones, landmarks=landmarks, digest=digest)


CANAL = ZoneSpec("椎管", "nerve", ((10.0, 50.0, 44.0), (90.0, 50.0, 44.0)), 6.0)


def test_the_protected_tubes_and_landmarks_are_under_the_plan_digest() -> None:
    plan = _with_annotations((CANAL,), (LandmarkSpec("apex", (1.0, 2.0, 3.0)),))
    assert check_plan(CASE, plan).element_id == 1
    # a plan without them digests as plans always did (stored rehearsals stay valid)
    assert plan_digest(CASE, 7, 3, plan.elements) == _plan().digest
    moved = msgspec.structs.replace(CANAL, radius_mm=2.0)
    for forged in (
        msgspec.structs.replace(plan, zones=()),  # the tube taken off: the drill sees no nerve
        msgspec.structs.replace(plan, zones=(moved,)),  # narrowed
        msgspec.structs.replace(plan, landmarks=()),
    ):
        with pytest.raises(ValueError, match="digest does not match"):
            check_plan(CASE, forged)


@pytest.mark.parametrize(
    "zone",
    [
        msgspec.structs.replace(CANAL, kind="bone"),
        msgspec.structs.replace(CANAL, radius_mm=0.0),
        msgspec.structs.replace(CANAL, radius_mm=float("inf")),
        msgspec.structs.replace(CANAL, points_mm=((float("nan"), 0.0, 0.0),)),
        msgspec.structs.replace(CANAL, points_mm=()),
        msgspec.structs.replace(CANAL, points_mm=((1.0, 1.0, 1.0),) * (MAX_ZONE_POINTS + 1)),
    ],
)
def test_a_tube_the_station_cannot_use_is_refused_even_with_a_matching_digest(
    zone: ZoneSpec,
) -> None:
    with pytest.raises(ValueError, match="protected tube"):
        check_plan(CASE, _with_annotations((zone,)))


def test_a_plan_at_every_limit_fits_one_start_session_frame() -> None:
    elements = tuple(
        PlanElementSpec(i, "pedicle_screw", (60.0 + i, 60.0, 60.0), (60.0, 10.0, 48.0), 6.5)
        for i in range(1, MAX_PLAN_ELEMENTS + 1)
    )
    points = tuple(
        (float(i) + 0.123456789, 50.123456789, 44.123456789) for i in range(MAX_ZONE_POINTS)
    )
    zones = tuple(
        ZoneSpec(f"神经根保护管 {i:02d} 左侧", "nerve", points, 6.0) for i in range(MAX_PLAN_ZONES)
    )
    landmarks = tuple(
        LandmarkSpec(f"标志点 {i:02d} 左侧椎弓根入点", (1.123456789, 2.123456789, 3.123456789))
        for i in range(MAX_PLAN_LANDMARKS)
    )
    digest = plan_digest(CASE, 7, 3, elements, zones, landmarks)
    plan = PlanSpec(7, 3, 1, elements, digest, zones=zones, landmarks=landmarks)
    frame = encode(_command(plan), seq=1)
    assert len(frame) <= StartSession.MAX_BYTES
    decoded = decode(frame).body
    assert isinstance(decoded, StartSession) and decoded.plan == plan
    assert check_plan(CASE, plan).element_id == 1


def test_the_plan_digest_is_signed_into_the_result() -> None:
    key = new_signing_key()
    verify_hex = key.verify_key.encode().hex()
    plain = sign_result(_result(), key)
    # a result without a plan signs exactly what it always did (tag v1, no digest)
    assert msgspec.msgpack.decode(signed_bytes(plain))[0] == SIGNING_TAG
    assert len(msgspec.msgpack.decode(signed_bytes(plain))) == 12
    verify_result(plain, verify_hex)

    rehearsed = sign_result(_result(_plan().digest), key)
    verify_result(rehearsed, verify_hex)
    # the digest cannot be swapped for another plan's, nor taken off, nor put on
    for forged in (
        msgspec.structs.replace(
            rehearsed, plan_digest=_plan(case_hash="sha256:" + "d" * 64).digest
        ),
        msgspec.structs.replace(rehearsed, plan_digest=""),
        msgspec.structs.replace(plain, plan_digest=_plan().digest),
    ):
        with pytest.raises(SignatureInvalidError):
            verify_result(forged, verify_hex)


def test_a_station_refuses_a_tampered_plan_over_the_bridge_and_runs_nothing(
    bridge: Bridge, station: StationIdentity, tmp_path: Path
) -> None:
    # a plan whose digest was made for another case: refused before the case is even asked for
    tampered = _plan(case_hash="sha256:" + "d" * 64)
    bridge.side.add_command(station.config.station_id, _command(tampered, "sess-bad"))
    runner = StationRunner(tmp_path / "station", realtime=False, echo=lambda s: None)
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(runner.run(max_sessions=1)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and bridge.side.command_state("sess-bad") == (0, ""):
        time.sleep(0.1)
    thread.join(timeout=30)
    assert done == [0]
    started, error = bridge.side.command_state("sess-bad") or (0, "")
    assert started == 1
    assert error.startswith("plan refused:") and "digest does not match" in error
    # nothing was run, saved or sent
    assert bridge.side.accepted_ids() == []
    assert not (tmp_path / "station" / "cases" / "cases").exists() or not any(
        (tmp_path / "station" / "cases" / "cases").iterdir()
    )


def test_an_osteotomy_planes_normal_is_under_the_digest_and_required() -> None:
    cut = PlanElementSpec(1, "osteotomy_plane", (30.0, 30.0, 30.0), (30.0, 40.0, 30.0), 0.6)
    with_normal = msgspec.structs.replace(cut, normal=(0.0, 0.0, 1.0))
    plan = PlanSpec(7, 3, 1, (with_normal,), plan_digest(CASE, 7, 3, (with_normal,)))
    assert check_plan(CASE, plan).normal == (0.0, 0.0, 1.0)
    # another normal under the same digest: another plane, refused
    tilted = msgspec.structs.replace(with_normal, normal=(0.0, 0.1, 1.0))
    with pytest.raises(ValueError, match="digest does not match"):
        check_plan(CASE, msgspec.structs.replace(plan, elements=(tilted,)))
    # elements without a normal digest as they always did
    assert plan_digest(CASE, 7, 3, (cut,)) != plan.digest
    without = PlanSpec(7, 3, 1, (cut,), plan_digest(CASE, 7, 3, (cut,)))
    with pytest.raises(ValueError, match="has no normal"):
        check_plan(CASE, without)
    bad = msgspec.structs.replace(with_normal, normal=(float("nan"), 0.0, 1.0))
    with pytest.raises(ValueError, match="not valid numbers"):
        check_plan(CASE, PlanSpec(7, 3, 1, (bad,), plan_digest(CASE, 7, 3, (bad,))))
