"""Rehearsing an approved plan at a station and the deviation report: the plan goes over the real
bridge (an endpoint on loopback ZeroMQ with the shell's DjangoShellSide, a StationRunner with the
scripted expert), the station drills the planned path, the shell verifies the result by replaying
it on the same path, and the plan page shows how far the drilled path strayed from the plan."""

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import Client
from planning_cases import LumbarCase, medial_shift
from shell_personas import Network, Personas

from bridge.endpoint import Endpoint
from bridge.keys import CurveKeys, new_curve_keys
from bridge.messages import PlanSpec, Result, StartSession, plan_digest
from bridge.signing import recording_hash, sign_result
from bridge.station import StationIdentity, StationRunner, enroll, load_identity
from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.planning import rehearsals, services
from clinical_shell.planning.models import Plan, PlanElement, Rehearsal
from clinical_shell.stations import services as stations
from clinical_shell.stations.bridge_side import DjangoShellSide
from clinical_shell.stations.models import RefusedMessage, SessionResult, Station, StationSession
from clinical_shell.stations.selectors import judged_results, verified_scores

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bridge"))
from bridge_helpers import free_port_block

SCREW = "pedicle_screw_6.5x45"
# the endpoint's thread uses its own database connection: the test's writes must be committed
pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class ShellBridge:
    endpoint: Endpoint
    thread: threading.Thread
    keys: CurveKeys
    port: int
    station: Station
    identity: StationIdentity
    station_dir: Path


@pytest.fixture
def shell_bridge(settings: Any, tmp_path: Path, shell_network: Network) -> Iterator[ShellBridge]:
    """The shell's bridge endpoint on loopback and a station of the 双柏 hospital enrolled
    through it with a one-time code."""
    settings.OSTEON_STATION_RECORDING_ROOT = tmp_path / "recordings"
    settings.OSTEON_CASE_ARCHIVE_ROOT = tmp_path / "archives"
    keys = new_curve_keys()
    port = free_port_block()
    endpoint = Endpoint(DjangoShellSide(), keys, port=port)
    thread = threading.Thread(target=endpoint.serve_forever, daemon=True)
    thread.start()
    assert endpoint.wait_ready()
    issued = stations.create_enrolment_code(
        actor=None, institution=shell_network.shuangbai, room="模拟训练室"
    )
    station_dir = tmp_path / "station"
    # a loaded CI machine may take longer than an operator would wait (10 s)
    enroll(
        station_dir,
        shell_url=f"tcp://127.0.0.1:{port}",
        code=issued.code,
        shell_key=keys.public,
        timeout_s=30.0,
    )
    identity = load_identity(station_dir)
    station = Station.objects.get(pk=int(identity.config.station_id))
    yield ShellBridge(endpoint, thread, keys, port, station, identity, station_dir)
    endpoint.stop()
    thread.join(timeout=5)


def _approved_plan(
    surgeon: User,
    case: SimulationCase,
    lumbar: LumbarCase,
    *extra: dict[str, Any],
    level: str = "L4",
) -> tuple[Plan, PlanElement]:
    plan = services.create_plan(actor=surgeon, patient=case.patient, case=case, title="演练")
    element = services.add_element(
        actor=surgeon,
        plan=plan,
        version=plan.version,
        data=services.ElementData(
            kind="pedicle_screw",
            label=f"{level} 左",
            entry_mm=lumbar.marks[f"{level}_pedicle_entry_left"],
            target_mm=lumbar.marks[f"{level}_pedicle_target_left"],
            implant_id=SCREW,
        ),
    )
    for data in extra:
        services.add_element(
            actor=surgeon, plan=plan, version=plan.version, data=services.ElementData(**data)
        )
    services.approve_plan(actor=surgeon, plan=plan, version=plan.version)
    return plan, element


DeviceRows = Callable[[Any, str], Any]


def _post_rehearsal(client: Client, plan_id: int, element_id: int, station_id: int) -> Any:
    """POST /api/v1/planning/plans/{plan_id}/rehearsals as the client's user."""
    return client.post(
        f"/api/v1/planning/plans/{plan_id}/rehearsals",
        {"element_id": element_id, "station_id": station_id},
        content_type="application/json",
    )


def _run_station(bridge: ShellBridge, device_rows: DeviceRows | None = None) -> None:
    """Run the station until its one session ended and the shell acknowledged the result."""
    runner = StationRunner(
        bridge.station_dir, realtime=False, echo=lambda s: None, device_rows=device_rows
    )
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(runner.run(max_sessions=1)), daemon=True)
    thread.start()
    thread.join(timeout=240)
    if thread.is_alive():
        runner.stop()
        thread.join(timeout=30)
        raise AssertionError("the station did not finish its session in 240 s")
    assert done == [0]


def test_a_plan_rehearsed_exactly_shows_zero_deviation_on_the_plan_page(
    shell_bridge: ShellBridge,
    personas: Personas,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    signed_in_client: Callable[[User], Client],
) -> None:
    surgeon = personas.county_surgeon
    # L3: not the scenario's own trajectory (the case's L4 left landmarks), so a station that
    # drilled the case's trajectory instead of the plan's would stray by a whole level
    plan, element = _approved_plan(surgeon, lumbar_case, lumbar_bundle, level="L3")
    client = signed_in_client(surgeon)

    # "rehearse on station X" from the plan page: the form lists the station, the POST queues it
    page = client.get(f"/planning/{plan.pk}/")
    assert page.status_code == 200
    assert f'<option value="{shell_bridge.station.pk}">' in page.content.decode()
    posted = client.post(
        f"/planning/{plan.pk}/rehearse/",
        {"station": shell_bridge.station.pk, "element": element.pk},
    )
    assert posted.status_code == 302, posted.content
    rehearsal = Rehearsal.objects.get()
    assert rehearsal.session.scenario == "pedicle_pilot_hole"
    assert rehearsal.session.user == surgeon
    # the plan sent: every element's path, the chosen one, a digest over them and the case
    spec = msgspec.convert(rehearsal.spec, type=PlanSpec)
    assert spec.element_id == element.pk and spec.version == plan.version == 3
    assert spec.digest == plan_digest(
        rehearsal.session.case_hash, plan.pk, spec.version, spec.elements
    )
    assert list(spec.elements[0].entry_mm) == lumbar_bundle.marks["L3_pedicle_entry_left"]
    assert spec.elements[0].diameter_mm == 6.5
    # ... and the bridge hands exactly that plan to the station
    [command] = DjangoShellSide().pending_commands(
        DjangoShellSide().station_for_key(shell_bridge.station.curve_public_key)  # type: ignore[arg-type]
    )
    assert isinstance(command, StartSession) and command.plan == spec

    _run_station(shell_bridge)
    result = SessionResult.objects.get(session=rehearsal.session)
    # the station signed the plan's digest into its result
    assert result.verification == "pending"
    verified = stations.verify_result_by_replay(result_id=result.pk)
    assert verified.verification == "verified", verified.rejection_reason
    rehearsal.refresh_from_db()
    # scored against a path the surgeon chose: it never counts for training or privileges
    assert verified.plan_digest == spec.digest
    assert not verified_scores(surgeon, scenario="pedicle_pilot_hole").filter(pk=verified.pk)
    assert not judged_results(surgeon, scenario="pedicle_pilot_hole").filter(pk=verified.pk)

    report = rehearsal.report
    assert report["element_id"] == element.pk
    assert report["entry_offset_mm"] < 0.5 and report["tip_offset_mm"] < 0.5
    assert report["angle_deg"] < 1.0
    # planned and achieved agree: the planner's breach of the path and the scoring's of the hole
    # (a 6.5 mm screw in this phantom's L3 pedicle grazes its wall: a breach both see alike)
    assert report["planned"]["gr_grade"] == report["achieved"]["gr_grade"]
    assert abs(report["planned"]["breach_mm"] - report["achieved"]["breach_mm"]) <= 0.02
    assert np.allclose(report["achieved"]["tip_mm"], lumbar_bundle.marks["L3_pedicle_target_left"])
    assert report["score"] == round(verified.score, 1)
    assert AuditEvent.objects.filter(action="plan.rehearse", target_id=str(plan.pk)).exists()
    assert AuditEvent.objects.filter(action="plan.rehearsal_report").count() == 1

    # the plan page shows the report and the history (newest first, verified)
    shown = client.get(f"/planning/{plan.pk}/").content.decode()
    assert 'id="deviation-table"' in shown
    assert f'<tr data-element-id="{element.pk}">' in shown
    assert f'data-rehearsal-id="{rehearsal.pk}" data-status="verified"' in shown
    # the 3D view gets the drilled path to draw beside the planned one
    achieved = re.search(
        r'<script id="planner-achieved" type="application/json">(.*?)</script>', shown
    )
    assert achieved is not None
    [path] = json.loads(achieved.group(1))
    assert path["element_id"] == element.pk
    assert np.allclose(path["tip_mm"], report["achieved"]["tip_mm"])
    # the page's read went through the patient's door, audited
    assert AuditEvent.objects.filter(
        action="patient.read",
        actor_user_id=surgeon.pk,
        patient_id=plan.patient_id,
        outcome="success",
    ).exists()


def test_a_rehearsal_driven_3_mm_off_the_plan_reports_that_offset(
    shell_bridge: ShellBridge,
    personas: Personas,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    signed_in_client: Callable[[User], Client],
) -> None:
    from sim_core.trajectories import scripted_rows

    surgeon = personas.county_surgeon
    plan, element = _approved_plan(surgeon, lumbar_case, lumbar_bundle)
    shift = np.asarray(medial_shift(lumbar_bundle.marks, 3.0))

    def shifted_hand(model: Any, skill: str) -> Any:
        # the scripted expert, steady as ever, on the planned path moved 3 mm towards the canal
        plan_ = model.plan
        moved = replace(
            plan_,
            entry_mm=tuple(np.add(plan_.entry_mm, shift)),
            target_mm=tuple(np.add(plan_.target_mm, shift)),
        )
        return scripted_rows(replace(model, plan=moved), skill)

    # this time through the API: started there, its report read there
    api = signed_in_client(surgeon)
    url = f"/api/v1/planning/plans/{plan.pk}/rehearsals"
    posted = _post_rehearsal(api, plan.pk, element.pk, shell_bridge.station.pk)
    assert posted.status_code == 201, posted.content
    assert posted.json()["status"] == "queued" and posted.json()["report"] == {}
    rehearsal = Rehearsal.objects.get(pk=posted.json()["id"])
    _run_station(shell_bridge, device_rows=shifted_hand)
    verified = stations.verify_result_by_replay(
        result_id=SessionResult.objects.get(session=rehearsal.session).pk
    )
    assert verified.verification == "verified", verified.rejection_reason
    [listed] = api.get(url).json()["items"]
    assert listed["id"] == rehearsal.pk and listed["status"] == "verified"
    assert listed["score"] == pytest.approx(verified.score)
    report = listed["report"]
    assert abs(report["entry_offset_mm"] - 3.0) < 0.3
    assert abs(report["tip_offset_mm"] - 3.0) < 0.3
    assert report["angle_deg"] < 1.0
    # 3 mm medial of a clean path breaches the pedicle wall: worse than planned
    assert report["planned"]["gr_grade"] == "A"
    assert report["achieved"]["breach_mm"] > 0 and report["achieved"]["gr_grade"] != "A"
    expected_tip = np.add(lumbar_bundle.marks["L4_pedicle_target_left"], shift)
    assert np.allclose(report["achieved"]["tip_mm"], expected_tip, atol=0.3)


def test_a_result_whose_plan_digest_is_not_the_sessions_is_refused(
    shell_bridge: ShellBridge,
    personas: Personas,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
) -> None:
    surgeon = personas.county_surgeon
    plan, element = _approved_plan(surgeon, lumbar_case, lumbar_bundle)
    rehearsal = rehearsals.start_rehearsal(
        actor=surgeon, plan=plan, element_id=element.pk, station=shell_bridge.station
    )
    recording = b"not replayed: refused before"

    def result_with(digest: str) -> Result:
        # signed by the station's own key: only the plan digest is wrong
        return sign_result(
            Result(
                station_id=str(shell_bridge.station.pk),
                username=surgeon.get_username(),
                session_id=rehearsal.session.uid,
                case_hash=rehearsal.session.case_hash,
                scenario="pedicle_pilot_hole",
                recording_hash=recording_hash(recording),
                metrics={"time_s": 30.0},
                score=100.0,
                passed=True,
                final_state_hash="sha256:" + "ab" * 32,
                ended_at=time.time(),
                signature="",
                recording=recording,
                plan_digest=digest,
            ),
            shell_bridge.identity.signing_key,
        )

    other = "sha256:" + "0" * 64
    for digest in (other, ""):
        with pytest.raises(stations.StationError) as refused:
            stations.accept_result(
                station=shell_bridge.station,
                message_id=uuid.uuid4().hex,
                result=result_with(digest),
            )
        assert refused.value.code == "session_mismatch"
    assert not SessionResult.objects.exists()
    reasons = list(RefusedMessage.objects.values_list("code", "reason_code"))
    assert reasons == [("session_mismatch", "plan_mismatch")] * 2
    assert StationSession.objects.get(pk=rehearsal.session_id).state == "queued"
    rehearsal.refresh_from_db()
    assert rehearsal.report == {} and rehearsal.reported_at is None


def test_only_an_approved_plans_rehearsable_element_is_sent_and_nothing_else_is_stored(
    shell_bridge: ShellBridge,
    personas: Personas,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    signed_in_client: Callable[[User], Client],
) -> None:
    surgeon = personas.county_surgeon
    entry = lumbar_bundle.marks["L4_body_centre"]
    # a plane whose normal lies along its own cut describes no plane: the station would refuse it
    plane = {
        "kind": "osteotomy_plane",
        "label": "截骨",
        "entry_mm": entry,
        "target_mm": [entry[0], entry[1] + 10.0, entry[2]],
        "plane_normal": [0.0, 1.0, 0.02],
    }
    plan, element = _approved_plan(surgeon, lumbar_case, lumbar_bundle, plane)
    cut = plan.elements.get(kind="osteotomy_plane")
    # a plane the station could not cut, an element of another plan: clear refusals
    with pytest.raises(Exception) as refused:
        rehearsals.start_rehearsal(
            actor=surgeon, plan=plan, element_id=cut.pk, station=shell_bridge.station
        )
    assert getattr(refused.value, "code", "") == "plane_normal_invalid"
    with pytest.raises(Exception) as missing:
        rehearsals.start_rehearsal(
            actor=surgeon, plan=plan, element_id=10**6, station=shell_bridge.station
        )
    assert getattr(missing.value, "code", "") == "plan_element_not_found"
    # a draft is not rehearsed
    draft = services.create_plan(
        actor=surgeon, patient=lumbar_case.patient, case=lumbar_case, title="草稿"
    )
    with pytest.raises(Exception) as not_approved:
        rehearsals.start_rehearsal(
            actor=surgeon, plan=draft, element_id=element.pk, station=shell_bridge.station
        )
    assert getattr(not_approved.value, "code", "") == "plan_not_approved"
    # the API says the same in problem details
    api = signed_in_client(surgeon)
    for plan_id, element_id, status, code in (
        (draft.pk, element.pk, 409, "plan_not_approved"),
        (plan.pk, cut.pk, 422, "plane_normal_invalid"),
        (plan.pk, 10**6, 404, "plan_element_not_found"),
    ):
        refused_api = _post_rehearsal(api, plan_id, element_id, shell_bridge.station.pk)
        assert refused_api.status_code == status, refused_api.content
        assert refused_api.json()["code"] == code
    outsider_api = _post_rehearsal(
        signed_in_client(personas.outsider), plan.pk, element.pk, shell_bridge.station.pk
    )
    assert outsider_api.status_code in (403, 404)
    # a surgeon of another hospital may not use this station (the page says so)
    outsider_page = signed_in_client(personas.outsider).post(
        f"/planning/{plan.pk}/rehearse/",
        {"station": shell_bridge.station.pk, "element": element.pk},
    )
    assert outsider_page.status_code in (302, 403, 404)
    assert not Rehearsal.objects.exists() and not StationSession.objects.exists()


def test_a_guide_wire_is_rehearsed_on_a_hip_case_and_reported_by_its_tip_apex_distance(
    shell_bridge: ShellBridge,
    personas: Personas,
    hip_bundle: LumbarCase,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    patient_in_shuangbai: Any,
    shell_network: Network,
    signed_in_client: Callable[[User], Client],
) -> None:
    from planning_cases import register_case

    surgeon = personas.county_surgeon
    hip_case = register_case(hip_bundle, patient_in_shuangbai, shell_network, personas, n=2)
    entry = np.asarray(hip_bundle.marks["lateral_cortex_entry"])
    apex = np.asarray(hip_bundle.marks["femoral_head_apex"])
    # the tip planned 8 mm short of the apex (the scenario's own plan stops at 5 mm)
    target = apex + 8.0 * (entry - apex) / np.linalg.norm(entry - apex)
    plan = services.create_plan(actor=surgeon, patient=hip_case.patient, case=hip_case, title="髋")
    element = services.add_element(
        actor=surgeon,
        plan=plan,
        version=plan.version,
        data=services.ElementData(
            kind="guide_wire",
            label="导针",
            entry_mm=[float(x) for x in entry],
            target_mm=[float(x) for x in target],
            implant_id="guide_wire_3.2",
        ),
    )
    services.approve_plan(actor=surgeon, plan=plan, version=plan.version)
    api = signed_in_client(surgeon)
    posted = _post_rehearsal(api, plan.pk, element.pk, shell_bridge.station.pk)
    assert posted.status_code == 201, posted.content
    rehearsal = Rehearsal.objects.get(pk=posted.json()["id"])
    assert rehearsal.session.scenario == "femoral_neck_guide_wire"
    _run_station(shell_bridge)
    verified = stations.verify_result_by_replay(
        result_id=SessionResult.objects.get(session=rehearsal.session).pk
    )
    assert verified.verification == "verified", verified.rejection_reason
    rehearsal.refresh_from_db()
    report = rehearsal.report
    # driven exactly on the plan: no deviation, and the tip-apex distance is the planned 8 mm
    assert report["kind"] == "guide_wire"
    assert report["entry_offset_mm"] < 0.5 and report["tip_offset_mm"] < 0.5
    assert report["angle_deg"] < 1.0
    assert report["planned"]["tip_apex_mm"] == pytest.approx(8.0, abs=0.05)
    assert report["achieved"]["tip_apex_mm"] == pytest.approx(8.0, abs=0.5)
    assert report["planned"]["gr_grade"] is None
    page = api.get(f"/planning/{plan.pk}/").content.decode()
    assert 'data-deviation="tip-apex"' in page

    # a guide wire on the lumbar case: no femoral head to measure to, refused before anything
    spine = services.create_plan(
        actor=surgeon, patient=lumbar_case.patient, case=lumbar_case, title="腰椎导针"
    )
    wire = services.add_element(
        actor=surgeon,
        plan=spine,
        version=spine.version,
        data=services.ElementData(
            kind="guide_wire",
            label="导针",
            entry_mm=lumbar_bundle.marks["L4_pedicle_entry_left"],
            target_mm=lumbar_bundle.marks["L4_pedicle_target_left"],
            implant_id="guide_wire_3.2",
        ),
    )
    services.approve_plan(actor=surgeon, plan=spine, version=spine.version)
    refused = _post_rehearsal(api, spine.pk, wire.pk, shell_bridge.station.pk)
    assert refused.status_code == 422 and refused.json()["code"] == "case_lacks_landmarks"
    assert "femoral_head_apex" in refused.json()["detail"]
    assert Rehearsal.objects.count() == 1


def test_a_real_ct_is_rehearsed_once_its_canal_is_drawn_and_the_station_counts_touching_it(
    shell_bridge: ShellBridge,
    personas: Personas,
    bare_lumbar_bundle: LumbarCase,
    patient_in_shuangbai: Any,
    shell_network: Network,
    signed_in_client: Callable[[User], Client],
) -> None:
    """A case built from the DICOM alone has no nerve: the pedicle scenario cannot count a
    canal breach on it. The surgeon draws the canal as a protected tube; the station gets the
    tube with the plan, marks it as nerve, and a drill driven through the canal touches it."""
    from planning_cases import register_case

    from clinical_shell.imaging.annotation_services import save_case_annotations
    from sim_core.trajectories import scripted_rows

    surgeon = personas.county_surgeon
    marks = bare_lumbar_bundle.marks
    case = register_case(bare_lumbar_bundle, patient_in_shuangbai, shell_network, personas, n=3)
    plan = services.create_plan(actor=surgeon, patient=case.patient, case=case, title="真实CT")
    element = services.add_element(
        actor=surgeon,
        plan=plan,
        version=plan.version,
        data=services.ElementData(
            kind="pedicle_screw",
            label="L4 左",
            entry_mm=marks["L4_pedicle_entry_left"],
            target_mm=marks["L4_pedicle_target_left"],
            implant_id=SCREW,
        ),
    )
    services.approve_plan(actor=surgeon, plan=plan, version=plan.version)
    api = signed_in_client(surgeon)

    # nothing drawn yet: refused before anything is sent, and the surgeon is told what to draw
    refused = _post_rehearsal(api, plan.pk, element.pk, shell_bridge.station.pk)
    assert refused.status_code == 422, refused.content
    assert refused.json()["code"] == "case_lacks_protected_zone"
    assert not Rehearsal.objects.exists() and not StationSession.objects.exists()

    canal = [marks[f"{level}_canal_centre"] for level in ("L3", "L4", "L5")]
    radius_mm = 6.0
    save_case_annotations(
        actor=surgeon,
        patient_id=case.patient_id,
        case_id=case.pk,
        base_number=0,
        content={
            "levels": [],
            "bones": [],
            "landmarks": [{"name": "L4 椎管中心", "point_mm": canal[1]}],
            "zones": [{"name": "椎管", "kind": "nerve", "points_mm": canal, "radius_mm": 6.0}],
        },
    )
    posted = _post_rehearsal(api, plan.pk, element.pk, shell_bridge.station.pk)
    assert posted.status_code == 201, posted.content
    rehearsal = Rehearsal.objects.get(pk=posted.json()["id"])
    spec = msgspec.convert(rehearsal.spec, type=PlanSpec)
    [zone] = spec.zones
    assert zone.kind == "nerve" and [list(p) for p in zone.points_mm] == canal
    assert [m.name for m in spec.landmarks] == ["L4 椎管中心"]
    # the tube is under the plan's digest: a station sent other tubes refuses the plan
    assert spec.digest == plan_digest(
        rehearsal.session.case_hash,
        plan.pk,
        spec.version,
        spec.elements,
        spec.zones,
        spec.landmarks,
    )
    assert spec.digest != plan_digest(
        rehearsal.session.case_hash, plan.pk, spec.version, spec.elements
    )

    # the hand drills the planned path moved 10 mm medially: through the drawn canal
    shift = np.asarray(medial_shift(marks, 10.0))
    entry, target = (
        np.add(marks["L4_pedicle_entry_left"], shift),
        np.add(marks["L4_pedicle_target_left"], shift),
    )
    line = np.asarray(canal)
    samples = entry + np.linspace(0.0, 1.0, 100)[:, None] * (target - entry)
    nearest = min(
        float(
            np.linalg.norm(p - a - np.clip((p - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1) * (b - a))
        )
        for p in samples
        for a, b in ((line[0], line[1]), (line[1], line[2]))
    )
    assert nearest < radius_mm - 1.0  # the moved path does pass through the tube

    def medial_hand(model: Any, skill: str) -> Any:
        moved = replace(model.plan, entry_mm=tuple(entry), target_mm=tuple(target))
        return scripted_rows(replace(model, plan=moved), skill)

    _run_station(shell_bridge, device_rows=medial_hand)
    result = SessionResult.objects.get(session=rehearsal.session)
    # the station counted the drawn canal as nerve, and the replay, rebuilt with the same tube,
    # agrees bit for bit
    assert result.metrics["nerve_contacts"] >= 1
    verified = stations.verify_result_by_replay(result_id=result.pk)
    assert verified.verification == "verified", verified.rejection_reason
    assert not verified.passed  # a nerve contact fails the attempt whatever the rest
    rehearsal.refresh_from_db()
    assert abs(rehearsal.report["tip_offset_mm"] - 10.0) < 0.5
    assert rehearsal.report["nerve_contacts"] >= 1 and not rehearsal.report["passed"]
    detail = AuditEvent.objects.get(action="plan.rehearse", target_id=str(plan.pk)).detail
    assert detail["annotation_version"] == 1
    # the plan page flags the contact and the failed attempt beside the deviation
    shown = api.get(f"/planning/{plan.pk}/").content.decode()
    assert re.search(r'class="num flagged" data-deviation="nerve">[1-9]\d*<', shown)
    assert 'class="num flagged" data-deviation="score">' in shown


def test_the_demo_plan_on_a_case_built_from_dicom_alone_can_be_rehearsed(
    shell_bridge: ShellBridge,
    personas: Personas,
    bare_lumbar_bundle: LumbarCase,
    patient_in_shuangbai: Any,
    shell_network: Network,
    signed_in_client: Callable[[User], Client],
) -> None:
    """`make run` builds its demo cases from the DICOM alone; the demo confirms the phantom's
    landmarks and canal on them, so its draft plan, once approved, goes to the station."""
    from planning_cases import register_case

    from clinical_shell.imaging.annotation_models import CaseAnnotationVersion
    from clinical_shell.planning.demo import DEMO_ANNOTATION_NOTE, load_planning_demo
    from sim_core.case.bundle import load_bundle

    case = register_case(bare_lumbar_bundle, patient_in_shuangbai, shell_network, personas, n=4)
    bundle = load_bundle(case.path)
    given = [
        {"name": n, "lps_mm": [float(c) for c in (bundle.patient_from_case @ [*p, 1.0])[:3]]}
        for n, p in bare_lumbar_bundle.marks.items()
    ]
    assert load_planning_demo({case.pk: given}) == 1
    [version] = CaseAnnotationVersion.objects.filter(case=case)
    assert version.number == 1 and version.note == DEMO_ANNOTATION_NOTE
    assert [z["name"] for z in version.content["zones"]] == ["椎管"]
    plan = Plan.objects.get(case=case)
    surgeon = case.created_by
    services.approve_plan(actor=surgeon, plan=plan, version=plan.version)
    api = signed_in_client(surgeon)
    first, second = plan.elements.order_by("id")
    # the page offers the first element not rehearsed yet, and lists both as not rehearsed
    page = api.get(f"/planning/{plan.pk}/").content.decode()
    assert f'<option value="{first.pk}" selected>' in page
    assert f'data-unrehearsed="{first.pk}"' in page and f'data-unrehearsed="{second.pk}"' in page
    posted = _post_rehearsal(api, plan.pk, first.pk, shell_bridge.station.pk)
    assert posted.status_code == 201, posted.content
    spec = msgspec.convert(Rehearsal.objects.get().spec, type=PlanSpec)
    assert [z.kind for z in spec.zones] == ["nerve"]
    assert "L4_pedicle_entry_left" in {m.name for m in spec.landmarks}
    assert {e.element_id for e in spec.elements} == {first.pk, second.pk}


def test_a_k_wire_a_burr_region_and_an_osteotomy_are_rehearsed_on_their_own_scenarios(
    shell_bridge: ShellBridge,
    personas: Personas,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    signed_in_client: Callable[[User], Client],
) -> None:
    """A K-wire is judged against its own planned target, a burr region by what was burred in
    and around it, an osteotomy by the plane the saw cut: scenarios no case carries the
    landmarks of, filled by the plan."""
    from sim_core.case.bundle import load_bundle

    surgeon = personas.county_surgeon
    marks = lumbar_bundle.marks
    bundle = load_bundle(lumbar_bundle.path)
    [body_lps] = [m["lps_mm"] for m in bundle.meta["landmarks"] if m["name"] == "L4_body_centre"]
    # a lesion in the front of the body, reached from in front as in the burr lesion scenario
    # (21 mm, not its 25: the test phantom's field of view ends 24 mm in front)
    lesion, outside, deep = (
        [float(x) for x in bundle.case_from_patient_mm(np.add(body_lps, [0.0, -dy, 0.0]))]
        for dy in (12.0, 21.0, 2.0)
    )
    # an axial cut into the body from in front: the plane's normal is the patient's S axis
    superior = np.subtract(
        bundle.case_from_patient_mm(np.add(body_lps, [0.0, 0.0, 1.0])),
        bundle.case_from_patient_mm(body_lps),
    )
    plan, _screw = _approved_plan(
        surgeon,
        lumbar_case,
        lumbar_bundle,
        {
            "kind": "k_wire",
            "label": "克氏针",
            "entry_mm": marks["L4_pedicle_entry_right"],
            "target_mm": marks["L4_pedicle_target_right"],
            "implant_id": "k_wire_2.0",
        },
        {
            "kind": "burr_region",
            "label": "病灶",
            "entry_mm": outside,
            "target_mm": lesion,
            "radius_mm": 5.0,
        },
        {
            "kind": "osteotomy_plane",
            "label": "截骨",
            "entry_mm": outside,
            "target_mm": deep,
            "plane_normal": [float(x) for x in superior],
        },
    )
    wire = plan.elements.get(kind="k_wire")
    region = plan.elements.get(kind="burr_region")
    cut = plan.elements.get(kind="osteotomy_plane")
    api = signed_in_client(surgeon)
    reports = {}
    for element, scenario in (
        (wire, "k_wire_on_plan"),
        (region, "burr_region_on_plan"),
        (cut, "osteotomy_on_plan"),
    ):
        posted = _post_rehearsal(api, plan.pk, element.pk, shell_bridge.station.pk)
        assert posted.status_code == 201, posted.content
        rehearsal = Rehearsal.objects.get(pk=posted.json()["id"])
        assert rehearsal.session.scenario == scenario
        _run_station(shell_bridge)
        verified = stations.verify_result_by_replay(
            result_id=SessionResult.objects.get(session=rehearsal.session).pk
        )
        assert verified.verification == "verified", verified.rejection_reason
        rehearsal.refresh_from_db()
        reports[element.kind] = rehearsal.report
    kw = reports["k_wire"]
    assert kw["tip_offset_mm"] < 0.5 and kw["angle_deg"] < 1.0 and kw["passed"]
    assert kw["achieved"]["tip_apex_mm"] is None  # no femoral head: not a tip-apex distance
    burr = reports["burr_region"]
    assert burr["planned"]["radius_mm"] == 5.0
    assert burr["achieved"]["target_removed_pct"] >= 70.0 and burr["passed"], json.dumps(burr)
    plane = reports["osteotomy_plane"]
    assert plane["cut_angle_deg"] < 1.0 and plane["cut_offset_mm"] < 0.5, json.dumps(plane)
    assert plane["achieved"]["cut_completeness_pct"] >= 90.0 and plane["passed"]
    assert np.allclose(plane["planned"]["normal"], superior / np.linalg.norm(superior), atol=1e-3)
    page = api.get(f"/planning/{plan.pk}/").content.decode()
    assert 'data-deviation="burr"' in page and 'data-deviation="depth"' in page
    assert 'data-deviation="plane"' in page
    # training cannot pick these scenarios: no case has the points they are written on
    from sim_core.scenarios import list_scenarios

    assert "k_wire_on_plan" not in list_scenarios()
    with pytest.raises(stations.StationError) as refused:
        stations.start_session_from_shell(
            actor=surgeon,
            station=shell_bridge.station,
            case_content_hash=lumbar_case.content_hash,
            scenario="k_wire_on_plan",
            user=surgeon,
        )
    assert refused.value.code == "unknown_scenario"
