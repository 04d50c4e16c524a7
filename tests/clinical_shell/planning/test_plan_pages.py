"""Planning pages: a surgeon opens a patient's plans, creates one on their CT case, adds a pedicle
screw by typing its points and reads its checks, sees a screw moved into the canal flagged in
Chinese (and English), is told when someone else changed the plan first, removes and approves
through confirmation pages, and prints the plan; people without the patient are refused with the
shell's 403 page and the reason."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from planning_cases import LumbarCase, medial_shift
from shell_personas import Network, Personas, make_persona

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.network.models import Role
from clinical_shell.planning import services
from clinical_shell.planning.models import Plan, PlanElement

SCREW = "pedicle_screw_6.5x45"
AXES = ("x", "y", "z")
ENGLISH = {"headers": {"accept-language": "en"}}
# Chinese characters and full-width punctuation
CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


@pytest.fixture
def surgeon(personas: Personas, signed_in_client: Callable[[User], Client]) -> Client:
    return signed_in_client(personas.county_surgeon)


def _points(lumbar: LumbarCase, shift: list[float] | None = None) -> dict[str, str]:
    shift = shift or [0.0, 0.0, 0.0]
    fields = {}
    for name, mark in (("entry", "L4_pedicle_entry_left"), ("target", "L4_pedicle_target_left")):
        for axis, value, delta in zip(AXES, lumbar.marks[mark], shift, strict=True):
            fields[f"{name}_{axis}"] = f"{value + delta:.3f}"
    return fields


def _screw_form(lumbar: LumbarCase, version: int, **kw: Any) -> dict[str, Any]:
    shift = kw.pop("shift", None)
    return {
        "version": version,
        "kind": "pedicle_screw",
        "label": "L4 左",
        "implant_id": SCREW,
        **_points(lumbar, shift),
        **kw,
    }


def _plan_with_screw(case: SimulationCase, lumbar: LumbarCase, surgeon_user: User) -> Plan:
    """A draft at version 2 holding the L4 left screw (through the services)."""
    plan = services.create_plan(
        actor=surgeon_user, patient=case.patient, case=case, title="L4 椎弓根螺钉"
    )
    services.add_element(
        actor=surgeon_user,
        plan=plan,
        version=1,
        data=services.ElementData(
            kind="pedicle_screw",
            label="L4 左",
            entry_mm=lumbar.marks["L4_pedicle_entry_left"],
            target_mm=lumbar.marks["L4_pedicle_target_left"],
            implant_id=SCREW,
        ),
    )
    plan.refresh_from_db()
    return plan


def _detail(plan: Plan) -> str:
    return reverse("planning:plan_detail", args=[plan.pk])


def test_a_surgeon_creates_a_plan_and_adds_a_screw_by_typing_its_points(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase
) -> None:
    patient_id = lumbar_case.patient_id
    timeline = surgeon.get(reverse("records:patient_timeline", args=[patient_id]))
    plans_url = reverse("planning:patient_plans", args=[patient_id])
    assert f'href="{plans_url}"' in timeline.content.decode()

    page = surgeon.get(plans_url)
    assert page.status_code == 200
    assert "暂无手术规划" in page.content.decode()
    assert f'<option value="{lumbar_case.pk}">#{lumbar_case.pk}' in page.content.decode()

    created = surgeon.post(plans_url, {"title": "L4 椎弓根螺钉", "case": lumbar_case.pk})
    plan = Plan.objects.get()
    assert created.status_code == 302 and created["Location"] == _detail(plan)
    listed = surgeon.get(plans_url).content.decode()
    assert "L4 椎弓根螺钉" in listed and "草稿" in listed and "王县医" in listed

    # every box in error at once; nothing written
    wrong = surgeon.post(
        _detail(plan), {**_screw_form(lumbar_bundle, 1), "entry_x": "", "target_y": "左"}
    )
    assert wrong.status_code == 422
    body = wrong.content.decode()
    assert 'id="id_entry_x-errors"' in body and 'id="id_target_y-errors"' in body
    assert "请更正下面标红的字段。" in body
    assert not PlanElement.objects.exists()

    added = surgeon.post(_detail(plan), _screw_form(lumbar_bundle, 1))
    assert added.status_code == 302, added.content.decode()
    element = PlanElement.objects.get()
    assert element.label == "L4 左" and element.checks["gr_grade"] == "A"
    assert element.checks["flags"] == []
    plan.refresh_from_db()
    assert plan.version == 2
    assert AuditEvent.objects.filter(action="plan.element.add", patient_id=patient_id).exists()

    shown = surgeon.get(_detail(plan)).content.decode()
    assert "L4 左" in shown and "椎弓根螺钉 6.5×45 mm" in shown
    assert 'data-check="grade">A<' in shown and 'data-check="breach">0.0 mm<' in shown
    nerve = element.checks["zones"]["nerve"]["clearance_mm"]
    assert nerve is not None and nerve > 0
    assert f"神经 {nerve:.1f} mm" in shown
    width = element.checks["bone_width_mm"]
    assert f"{width:.1f} mm / Ø6.5 mm" in shown
    depth = element.checks["bone_depth_mm"]
    assert f"{depth:.1f} mm / 45.0 mm" in shown
    assert 'class="warnings"' not in shown
    # the form carries the version the page showed
    assert 'name="version" value="2"' in shown
    nav = re.search(r'<nav class="breadcrumbs[^"]*"[^>]*>(.*?)</nav>', shown, re.S)
    assert nav is not None
    crumbs = [
        re.sub(r"<[^>]+>", "", li).strip() for li in re.findall(r"<li[^>]*>(.*?)</li>", nav[1])
    ]
    assert crumbs == ["首页", "患者", "张三丰", "手术规划", "L4 椎弓根螺钉"]


def test_a_screw_moved_into_the_canal_reads_as_a_breach_in_chinese_and_english(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase, personas: Personas
) -> None:
    plan = _plan_with_screw(lumbar_case, lumbar_bundle, personas.county_surgeon)
    element = PlanElement.objects.get()
    edit = reverse("planning:element_edit", args=[plan.pk, element.pk])
    form = surgeon.get(edit)
    assert form.status_code == 200 and 'value="L4 左"' in form.content.decode()

    moved = _screw_form(lumbar_bundle, 2, shift=medial_shift(lumbar_bundle.marks, 5.0))
    changed = surgeon.post(edit, moved)
    assert changed.status_code == 302, changed.content.decode()
    element.refresh_from_db()
    checks = element.checks
    assert checks["gr_grade"] in ("C", "D", "E")
    assert "cortical_breach" in checks["flags"] and "protected_zone_contact" in checks["flags"]

    shown = surgeon.get(_detail(plan)).content.decode()
    breach = f"{checks['breach_mm']:.1f}"
    assert f"皮质突破 {breach} mm（预测 Gertzbein–Robbins 分级 {checks['gr_grade']}）" in shown
    assert "触及神经：距入点" in shown
    assert f'data-warnings-for="{element.pk}"' in shown
    assert "1 个要素有警告" in shown
    assert f'class="num flagged" data-check="grade">{checks["gr_grade"]}<' in shown

    english = surgeon.get(_detail(plan), **ENGLISH).content.decode()
    assert f"Cortical breach of {breach} mm (predicted Gertzbein–Robbins grade" in english
    assert "Touches the nerve" in english and "1 element has warnings" in english
    # no Chinese left on the English page but the data it shows
    text = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", english, flags=re.S)
    for data in ("张三丰", "L4 椎弓根螺钉", "L4 左", "王县医", "双柏县人民医院", "简体中文"):
        text = text.replace(data, "")
    assert CHINESE.findall(text) == [], text


def test_stored_width_and_depth_flags_read_as_sentences(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase, personas: Personas
) -> None:
    plan = _plan_with_screw(lumbar_case, lumbar_bundle, personas.county_surgeon)
    element = PlanElement.objects.get()
    element.checks = {
        **element.checks,
        "radius_mm": 3.25,
        "bone_width_mm": 5.8,
        "span_length_mm": 45.0,
        "bone_depth_mm": 40.2,
        "flags": ["wider_than_bone", "longer_than_bone"],
    }
    element.save(update_fields=["checks"])
    shown = surgeon.get(_detail(plan)).content.decode()
    assert "螺钉直径 6.5 mm 大于最窄处骨宽 5.8 mm" in shown
    assert "螺钉长度 45.0 mm 超过骨内深度 40.2 mm，将穿出对侧皮质" in shown
    assert 'class="num flagged" data-check="width">5.8 mm / Ø6.5 mm<' in shown
    english = surgeon.get(_detail(plan), **ENGLISH).content.decode()
    assert "diameter of 6.5 mm exceeds the narrowest bone width of 5.8 mm" in english
    assert "length of 45.0 mm exceeds the depth in bone of 40.2 mm" in english


def test_a_stale_version_shows_the_conflict_and_changes_nothing(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase, personas: Personas
) -> None:
    plan = _plan_with_screw(lumbar_case, lumbar_bundle, personas.county_surgeon)
    element = PlanElement.objects.get()
    before = (element.entry_mm, element.label, element.checks)
    # pages opened at version 1, before the screw was added
    attempts = [
        (_detail(plan), _screw_form(lumbar_bundle, 1, label="L5 左")),
        (
            reverse("planning:element_edit", args=[plan.pk, element.pk]),
            _screw_form(lumbar_bundle, 1, label="L4 右"),
        ),
        (reverse("planning:element_delete", args=[plan.pk, element.pk]), {"version": 1}),
        (reverse("planning:approve", args=[plan.pk]), {"version": 1}),
    ]
    for url, form in attempts:
        response = surgeon.post(url, form)
        assert response.status_code == 409, url
        body = response.content.decode()
        assert 'id="plan-conflict"' in body
        assert "规划已被修改（当前版本 2，您编辑的是版本 1），请刷新后重试" in body
        assert f'href="{_detail(plan)}">重新载入规划' in body
    element.refresh_from_db()
    plan.refresh_from_db()
    assert (element.entry_mm, element.label, element.checks) == before
    assert PlanElement.objects.count() == 1
    assert plan.version == 2 and plan.status == Plan.Status.DRAFT
    english = surgeon.post(attempts[0][0], attempts[0][1], **ENGLISH).content.decode()
    assert "changed by someone else" in english and "Reload the plan" in english


def test_an_element_is_removed_after_a_confirmation_page(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase, personas: Personas
) -> None:
    plan = _plan_with_screw(lumbar_case, lumbar_bundle, personas.county_surgeon)
    element = PlanElement.objects.get()
    url = reverse("planning:element_delete", args=[plan.pk, element.pk])
    confirm = surgeon.get(url)
    assert confirm.status_code == 200
    assert "确认删除" in confirm.content.decode() and "L4 左" in confirm.content.decode()
    assert PlanElement.objects.exists()
    removed = surgeon.post(url, {"version": 2})
    assert removed.status_code == 302
    assert not PlanElement.objects.exists()
    assert AuditEvent.objects.filter(action="plan.element.delete").count() == 1


def test_an_approved_plan_is_read_only_and_prints_with_its_approval(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase, personas: Personas
) -> None:
    plan = _plan_with_screw(lumbar_case, lumbar_bundle, personas.county_surgeon)
    element = PlanElement.objects.get()
    printed = surgeon.get(reverse("planning:plan_print", args=[plan.pk])).content.decode()
    assert "该规划尚未批准" in printed

    url = reverse("planning:approve", args=[plan.pk])
    writes_before = AuditEvent.objects.filter(action="patient.write").count()
    confirm = surgeon.get(url)
    assert confirm.status_code == 200 and "确认批准" in confirm.content.decode()
    assert Plan.objects.get().status == Plan.Status.DRAFT
    # the confirmation page writes nothing: the patient's record was read, not written
    assert AuditEvent.objects.filter(action="patient.write").count() == writes_before
    assert AuditEvent.objects.filter(
        action="patient.read", patient_id=plan.patient_id, reason="plan approve"
    ).exists()
    approved = surgeon.post(url, {"version": 2})
    assert AuditEvent.objects.filter(
        action="patient.write", patient_id=plan.patient_id, reason="plan approve"
    ).exists()
    assert approved.status_code == 302 and approved["Location"] == _detail(plan)
    plan.refresh_from_db()
    assert plan.status == Plan.Status.APPROVED and plan.approved_by == personas.county_surgeon

    shown = surgeon.get(_detail(plan)).content.decode()
    assert "已批准" in shown and 'id="read-only"' in shown
    assert '<form method="post" novalidate class="element-form"' not in shown
    assert 'id="approve-link"' not in shown
    assert reverse("planning:element_edit", args=[plan.pk, element.pk]) not in shown

    # the write pages refuse with the reason; nothing changes
    edit = surgeon.get(reverse("planning:element_edit", args=[plan.pk, element.pk]))
    assert edit.status_code == 409 and "规划已批准或已被取代" in edit.content.decode()
    added = surgeon.post(_detail(plan), _screw_form(lumbar_bundle, 3, label="L5 左"))
    assert added.status_code == 409 and "不能再修改" in added.content.decode()
    assert PlanElement.objects.count() == 1

    printed = surgeon.get(reverse("planning:plan_print", args=[plan.pk]))
    assert printed.status_code == 200
    text = printed.content.decode()
    assert "手术规划单" in text and "张三丰" in text and "L4 左" in text
    assert 'id="print-approved-by">王县医<' in text and "该规划尚未批准" not in text
    assert "@media print" in text


def test_people_without_the_patient_get_the_403_page_with_the_reason(
    surgeon: Client,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    plan = _plan_with_screw(lumbar_case, lumbar_bundle, personas.county_surgeon)
    element = PlanElement.objects.get()
    outsider = signed_in_client(personas.outsider)
    pages = [
        reverse("planning:patient_plans", args=[lumbar_case.patient_id]),
        _detail(plan),
        reverse("planning:plan_print", args=[plan.pk]),
        reverse("planning:approve", args=[plan.pk]),
        reverse("planning:element_edit", args=[plan.pk, element.pk]),
    ]
    for url in pages:
        response = outsider.get(url)
        assert response.status_code == 403, url
        body = response.content.decode()
        assert "无权访问" in body and "您所在机构与该患者无诊疗关系，无权访问" in body
    posted = outsider.post(_detail(plan), _screw_form(lumbar_bundle, 2))
    assert posted.status_code == 403
    approved = outsider.post(reverse("planning:approve", args=[plan.pk]), {"version": 2})
    assert approved.status_code == 403
    assert PlanElement.objects.count() == 1 and Plan.objects.get().version == 2
    refusals = AuditEvent.objects.filter(actor_user_id=personas.outsider.pk, outcome="failure")
    assert refusals.count() >= len(pages) + 2

    # the radiologist reads the plan but is offered no forms, and a post is refused
    radiologist = signed_in_client(personas.radiologist)
    shown = radiologist.get(_detail(plan))
    assert shown.status_code == 200 and 'id="element-form"' not in shown.content.decode()
    assert radiologist.post(_detail(plan), _screw_form(lumbar_bundle, 2)).status_code == 403
    assert PlanElement.objects.count() == 1


def test_only_a_surgeon_approves_a_plan_others_may_draft(
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    personas: Personas,
    shell_network: Network,
    signed_in_client: Callable[[User], Client],
) -> None:
    # a resident at the county hospital treating the patient drafts the plan, and may not
    # approve it
    resident = make_persona(
        "liu.resident", "刘住院", "assistant", (shell_network.shuangbai, Role.RESIDENT)
    )
    doctor = signed_in_client(resident)
    plan = _plan_with_screw(lumbar_case, lumbar_bundle, resident)
    shown = doctor.get(_detail(plan)).content.decode()
    assert 'id="element-form"' in shown and 'id="approve-link"' not in shown
    refused = doctor.post(reverse("planning:approve", args=[plan.pk]), {"version": 2})
    assert refused.status_code == 403
    assert "只有外科医生可以批准手术规划" in refused.content.decode()
    plan.refresh_from_db()
    assert plan.status == Plan.Status.DRAFT and plan.approved_by is None
    assert AuditEvent.objects.filter(
        action="plan.approve", actor_user_id=resident.pk, outcome="failure"
    ).exists()
    # the surgeon approves the same draft
    surgeon = signed_in_client(personas.county_surgeon)
    assert 'id="approve-link"' in surgeon.get(_detail(plan)).content.decode()
    approved = surgeon.post(reverse("planning:approve", args=[plan.pk]), {"version": 2})
    assert approved.status_code == 302
    plan.refresh_from_db()
    assert plan.status == Plan.Status.APPROVED and plan.approved_by == personas.county_surgeon
