"""Rehearsing an approved plan at a station, and its deviation report.

`start_rehearsal` queues a session (the stations app's `start_session_from_shell`) of the
scenario matching the element's kind, for the surgeon at a station they may use, and keeps what
was sent: the plan's element paths and their digest (`bridge.messages.PlanSpec`). The bridge
hands the station that plan (`plan_spec_for_session`); the station drills the chosen element's
path and signs the digest into its result; the shell refuses a result whose digest is not the
session's (`plan_digest_for_session`) and replays the recording on the same path
(`trajectory_for_session`). Once the replay verified the result, `record_deviation` stores the
report (`planning.deviation`) with the rehearsal.

The plan goes with the case's latest confirmed annotations (``imaging``'s annotation
versions): its protected tubes, which the station marks as nerve and vessel (a real CT has none
of its own), and its landmarks, which stand in for a phantom's where a scenario measures to one.
Both are in the plan's digest, so the replay rebuilds the very model the station ran.

Built: one element per rehearsal (the one the surgeon picks; the plan page lists each element's
latest report); pedicle screws and drill holes, each as the pedicle pilot hole scenario on its
path, guide wires as the femoral neck guide wire scenario (on a case with the femoral head
apex that scenario measures to, the case's own or a confirmed landmark), K-wires and burr
regions and osteotomy planes as the rehearsal scenarios made for them (`k_wire_on_plan`,
`burr_region_on_plan`, `osteotomy_on_plan`: a wire judged against its own target; the region
burred around its target; the oscillating saw along the plane, entry -> target).
"""

from typing import Any

import msgspec
import numpy as np
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bridge.messages import (
    MAX_PLAN_ELEMENTS,
    MAX_PLAN_LANDMARKS,
    MAX_PLAN_ZONES,
    MAX_REGION_DIAMETER_MM,
    MAX_ZONE_POINTS,
    REHEARSABLE_KINDS,
    LandmarkSpec,
    PlanElementSpec,
    PlanSpec,
    ZoneSpec,
    plan_digest,
)
from bridge.plan_rehearsal import rehearsal_arguments, tubes_of
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.imaging.annotation_selectors import confirmed_annotations
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.planning import deviation
from clinical_shell.planning.models import Plan, PlanElement, Rehearsal
from clinical_shell.stations import services as stations
from clinical_shell.stations.access import check_case_for_session, check_may_start_session
from clinical_shell.stations.models import Station
from sim_core import plan_checks
from sim_core.case.bundle import BundleError, load_bundle
from sim_core.implants import ImplantError, get_implant
from sim_core.instruments import load_instrument
from sim_core.model import check_case_has
from sim_core.rehearsal import landmarks_needed, with_protected_tubes
from sim_core.scenarios import ScenarioError, load_scenario, plane_normal

# the scenario a rehearsal of each element kind runs on the element's path
SCENARIO_OF_KIND: dict[str, str] = {
    PlanElement.Kind.PEDICLE_SCREW: "pedicle_pilot_hole",
    PlanElement.Kind.DRILL_HOLE: "pedicle_pilot_hole",
    # a hip case's guide wire (the scenario's tip-apex distance is to the case's femoral head)
    PlanElement.Kind.GUIDE_WIRE: "femoral_neck_guide_wire",
    # rehearsal scenarios (sim_core.scenarios.PLAN_POINTS): a wire judged against its own
    # target, a region burred around its target with the region's radius
    PlanElement.Kind.K_WIRE: "k_wire_on_plan",
    PlanElement.Kind.BURR_REGION: "burr_region_on_plan",
    # the oscillating saw along the plane, entry -> target
    PlanElement.Kind.OSTEOTOMY_PLANE: "osteotomy_on_plan",
}
assert set(SCENARIO_OF_KIND) == set(REHEARSABLE_KINDS)


def _diameter_mm(element: PlanElement, scenario: str) -> float:
    # a burr region's sphere; the implant's diameter; a drill hole without one the scenario's
    # drill
    if element.kind == PlanElement.Kind.BURR_REGION:
        return 2.0 * float(element.radius_mm or 0.0)
    if element.implant_id:
        try:
            return get_implant(element.implant_id).diameter_mm
        except ImplantError:
            pass
    return 2.0 * load_instrument(load_scenario(scenario).instrument).radius_mm


def _element_spec(element: PlanElement) -> PlanElementSpec:
    scenario = SCENARIO_OF_KIND.get(element.kind, "pedicle_pilot_hole")
    e, t = element.entry_mm, element.target_mm
    n = element.plane_normal if element.kind == PlanElement.Kind.OSTEOTOMY_PLANE else None
    return PlanElementSpec(
        element_id=element.pk,
        kind=element.kind,
        entry_mm=(float(e[0]), float(e[1]), float(e[2])),
        target_mm=(float(t[0]), float(t[1]), float(t[2])),
        diameter_mm=_diameter_mm(element, scenario),
        normal=None if n is None else (float(n[0]), float(n[1]), float(n[2])),
    )


def _case_unavailable() -> DomainError:
    return DomainError("case_unavailable", _("仿真病例文件无法读取或已被改动"), status=409)


def _confirmed(case: SimulationCase) -> tuple[int, tuple[ZoneSpec, ...], tuple[LandmarkSpec, ...]]:
    # the latest annotation version's tubes and landmarks, as the station is sent them
    found = confirmed_annotations(case.pk)
    if found is None:
        return 0, (), ()
    number, annotations = found
    if (
        len(annotations.zones) > MAX_PLAN_ZONES
        or len(annotations.landmarks) > MAX_PLAN_LANDMARKS
        or any(len(t.points_mm) > MAX_ZONE_POINTS for t in annotations.zones)
    ):
        raise DomainError(
            "annotations_too_large",
            _(
                "病例标注过多，无法发送到工作站（最多 %(zones)s 条保护管、每条 %(points)s 个点、"
                "%(marks)s 个标志点）"
            )
            % {"zones": MAX_PLAN_ZONES, "points": MAX_ZONE_POINTS, "marks": MAX_PLAN_LANDMARKS},
            status=422,
        )
    zones = tuple(
        ZoneSpec(name=t.name, kind=t.kind, points_mm=t.points_mm, radius_mm=t.radius_mm)
        for t in annotations.zones
    )
    landmarks = tuple(LandmarkSpec(name=m.name, point_mm=m.point_mm) for m in annotations.landmarks)
    return number, zones, landmarks


def _check_case_rehearsable(
    case: SimulationCase,
    scenario: str,
    zones: tuple[ZoneSpec, ...],
    landmarks: tuple[LandmarkSpec, ...],
) -> None:
    # what the station would refuse whatever the path, refused here before anything is sent:
    # a guide wire on a case without a femoral head apex, a pedicle on a case with no nerve
    # (a real CT whose canal nobody drew)
    try:
        bundle = load_bundle(case.path, verify=False)
    except BundleError as exc:
        raise _case_unavailable() from exc
    if bundle.content_hash != case.content_hash:
        raise _case_unavailable()
    have = {str(m["name"]) for m in bundle.meta.get("landmarks", [])}
    have |= {m.name for m in landmarks}
    missing = sorted(landmarks_needed(scenario) - have)
    if missing:
        raise DomainError(
            "case_lacks_landmarks",
            _("此病例缺少演练所需的解剖标志点：%(names)s（可在病例标注页标出）")
            % {"names": "、".join(missing)},
            status=422,
        )
    tissue = with_protected_tubes(bundle.tissue, tubes_of(zones), bundle.spacing_mm)
    try:
        check_case_has(load_scenario(scenario), tissue, f"case {case.pk}")
    except ScenarioError as exc:
        raise DomainError(
            "case_lacks_protected_zone",
            _(
                "此病例没有演练计分所需的神经或血管区域：请先在病例标注页画出并确认保护管"
                "（如椎管、神经根）"
            ),
            status=422,
        ) from exc


def _check_plane(element: PlanElement) -> None:
    # the station would refuse it: refused here, before anything is sent
    axis = np.subtract(element.target_mm, element.entry_mm)
    normal = element.plane_normal
    try:
        plane_normal(axis, None if normal is None else tuple(normal))
    except ScenarioError as exc:
        raise DomainError(
            "plane_normal_invalid",
            _("截骨平面的法向无效或几乎与截骨方向（入点→靶点）重合，无法演练"),
            status=422,
        ) from exc


@transaction.atomic
def start_rehearsal(*, actor: User, plan: Plan, element_id: int, station: Station) -> Rehearsal:
    """Queue a rehearsal of one element of an approved plan at `station`, for the actor.

    Preconditions: the caller opened `plan` with `access.access_plan` and `station` with the
    stations app's `access_station`. Refused (nothing stored): a plan not approved, an element
    not in it or of a kind no station rehearses, a station the actor may not use."""
    locked = Plan.objects.select_for_update().select_related("case").get(pk=plan.pk)
    if locked.status != Plan.Status.APPROVED:
        raise DomainError("plan_not_approved", _("只有已批准的规划可以演练"))
    elements = list(locked.elements.order_by("id"))
    chosen = next((e for e in elements if e.pk == element_id), None)
    if chosen is None:
        raise DomainError(
            "plan_element_not_found",
            _("未找到编号为 %(element_id)s 的规划要素") % {"element_id": element_id},
            status=404,
        )
    if chosen.kind not in SCENARIO_OF_KIND:
        raise DomainError(
            "element_not_rehearsable",
            _("%(kind)s 不能在工作站上演练") % {"kind": chosen.get_kind_display()},
            status=422,
        )
    if len(elements) > MAX_PLAN_ELEMENTS:
        raise DomainError(
            "plan_too_large",
            _("规划要素超过 %(n)s 个，无法发送到工作站") % {"n": MAX_PLAN_ELEMENTS},
            status=422,
        )
    if (
        chosen.kind == PlanElement.Kind.BURR_REGION
        and 2.0 * float(chosen.radius_mm or 0.0) > MAX_REGION_DIAMETER_MM
    ):
        raise DomainError(
            "region_too_large",
            _("磨钻区域半径超过 %(mm)s mm，无法在工作站上演练")
            % {"mm": f"{MAX_REGION_DIAMETER_MM / 2:.0f}"},
            status=422,
        )
    if chosen.kind == PlanElement.Kind.OSTEOTOMY_PLANE:
        _check_plane(chosen)
    check_may_start_session(actor, station, actor)
    annotation_version, zones, landmarks = _confirmed(locked.case)
    _check_case_rehearsable(locked.case, SCENARIO_OF_KIND[chosen.kind], zones, landmarks)
    check_case_for_session(actor, locked.case.content_hash)
    session = stations.start_session_from_shell(
        actor=actor,
        station=station,
        case_content_hash=locked.case.content_hash,
        scenario=SCENARIO_OF_KIND[chosen.kind],
        user=actor,
        rehearsal=True,
    )
    specs = tuple(_element_spec(e) for e in elements)
    spec = PlanSpec(
        plan_id=locked.pk,
        version=locked.version,
        element_id=chosen.pk,
        elements=specs,
        digest=plan_digest(session.case_hash, locked.pk, locked.version, specs, zones, landmarks),
        zones=zones,
        landmarks=landmarks,
    )
    rehearsal = Rehearsal.objects.create(
        plan=locked,
        plan_version=locked.version,
        element=chosen,
        session=session,
        plan_digest=spec.digest,
        spec=msgspec.to_builtins(spec),
        started_by=actor,
    )
    audit.record(
        actor=actor,
        action="plan.rehearse",
        patient_id=locked.patient_id,
        target=locked,
        detail={
            "rehearsal": rehearsal.pk,
            "element_id": chosen.pk,
            "session": session.pk,
            "station": station.pk,
            "plan_digest": spec.digest,
            "annotation_version": annotation_version,
        },
    )
    return rehearsal


def _rehearsal_of_session(session_id: int | None) -> Rehearsal | None:
    if session_id is None:
        return None
    return Rehearsal.objects.filter(session_id=session_id).first()


def plan_spec_for_session(session_id: int) -> PlanSpec | None:
    """The plan the bridge sends with this session's StartSession (None: not a rehearsal)."""
    rehearsal = _rehearsal_of_session(session_id)
    if rehearsal is None:
        return None
    return msgspec.convert(rehearsal.spec, type=PlanSpec)


def plan_digest_for_session(session_id: int | None) -> str:
    """The plan digest a result of this session must carry ("" for a session without a plan)."""
    rehearsal = _rehearsal_of_session(session_id)
    return rehearsal.plan_digest if rehearsal is not None else ""


def trajectory_for_session(session_id: int | None) -> dict[str, Any] | None:
    """What the replay (`sim_core.rehearsal.model_for_rehearsal_recording`) rebuilds the
    rehearsal's model from: the rehearsed element's entry_mm, target_mm, diameter_mm, and the
    tubes and landmarks sent with it; None for a session without a plan."""
    rehearsal = _rehearsal_of_session(session_id)
    if rehearsal is None:
        return None
    spec = msgspec.convert(rehearsal.spec, type=PlanSpec)
    element = next(e for e in spec.elements if e.element_id == spec.element_id)
    return rehearsal_arguments(spec, element)


def _sent_element(rehearsal: Rehearsal) -> dict[str, Any]:
    spec = rehearsal.spec
    return next(e for e in spec["elements"] if e["element_id"] == spec["element_id"])


@transaction.atomic
def record_deviation(*, session_id: int | None, replayed: dict[str, Any]) -> Rehearsal | None:
    """Store the deviation report of the rehearsal of this session from the replay of its
    verified result (``replayed``: `sim_core.replay.SessionResult.as_dict`). Called by the
    stations app's verification; a session without a plan: None, nothing written."""
    if session_id is None:
        return None
    rehearsal = (
        Rehearsal.objects.select_for_update()
        .select_related("plan__case", "element")
        .filter(session_id=session_id)
        .first()
    )
    if rehearsal is None or rehearsal.reported_at is not None:
        return rehearsal
    case = rehearsal.plan.case
    try:
        report = deviation.deviation_report(
            case_path=case.path,
            case_content_hash=case.content_hash,
            element=_sent_element(rehearsal),
            label=rehearsal.element.label,
            replayed=replayed,
        )
    except (plan_checks.PlanCheckError, OSError, ValueError) as exc:
        report = {"error": str(exc)[:300]}
    rehearsal.report = report
    rehearsal.reported_at = timezone.now()
    rehearsal.save(update_fields=["report", "reported_at"])
    audit.record(
        actor=None,
        action="plan.rehearsal_report",
        patient_id=rehearsal.plan.patient_id,
        target=rehearsal.plan,
        detail={"rehearsal": rehearsal.pk, "session": session_id},
    )
    return rehearsal
