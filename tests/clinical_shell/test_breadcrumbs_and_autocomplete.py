"""Everyday habits: breadcrumbs on the shell's pages (首页 › 患者 › 张三 › 就诊), in the page's
language and absent before sign-in; `autocomplete` on sign-in, password and registration forms
(password managers fill the right boxes; an ID number or another person's name is never offered)."""

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas
from training_scores import enrolled_station, score_row

from clinical_shell.credentialing import services as credentialing
from clinical_shell.credentialing.models import Application
from clinical_shell.records.models import Patient


def crumbs(html: str) -> list[str]:
    """The breadcrumb texts of a page, first to last ([] when it has none)."""
    found = re.search(r'<nav class="breadcrumbs[^"]*"[^>]*>(.*?)</nav>', html, re.S)
    if found is None:
        return []
    items = re.findall(r"<li[^>]*>(.*?)</li>", found.group(1), re.S)
    return [re.sub(r"<[^>]+>", "", item).strip() for item in items]


def current(html: str) -> str:
    found = re.search(r'<li aria-current="page">(.*?)</li>', html, re.S)
    assert found, "the last crumb is marked as the current page"
    return found.group(1).strip()


def test_a_patients_pages_show_where_they_sit(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(personas.county_surgeon)
    patient = patient_in_shuangbai
    encounter = patient.encounters.get()
    timeline = client.get(f"/patients/{patient.pk}/").content.decode()
    assert crumbs(timeline) == ["首页", "患者", "张三丰"] and current(timeline) == "张三丰"
    visit = client.get(f"/patients/{patient.pk}/encounters/{encounter.pk}/").content.decode()
    assert crumbs(visit) == ["首页", "患者", "张三丰", "就诊"]
    # each crumb but the last links up the way
    assert f'href="/patients/{patient.pk}/"' in visit.split('aria-current="page"')[0]
    studies = client.get(f"/imaging/patients/{patient.pk}/").content.decode()
    assert crumbs(studies) == ["首页", "患者", "张三丰", "影像检查"]
    # in English too
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = crumbs(
        client.get(f"/patients/{patient.pk}/encounters/{encounter.pk}/").content.decode()
    )
    assert english[0] == "Home" and english[2] == "张三丰" and "患者" not in english


@pytest.mark.parametrize(
    ("who", "url", "expected"),
    [
        ("county_surgeon", "/imaging/", ["首页", "影像"]),
        ("radiologist", "/imaging/reports/", ["首页", "影像报告"]),
        ("county_surgeon", "/referrals/", ["首页", "双向转诊"]),
        ("county_surgeon", "/referrals/consult/", ["首页", "远程会诊"]),
        ("quality_manager", "/quality/", ["首页", "质控"]),
        ("quality_manager", "/quality/warnings/", ["首页", "质控", "质控预警"]),
        ("county_surgeon", "/training/", ["首页", "培训"]),
        ("admin", "/administration/", ["首页", "系统管理"]),
        ("admin", "/administration/users/", ["首页", "系统管理", "用户管理"]),
        ("admin", "/administration/stations/", ["首页", "系统管理", "模拟工作站"]),
        ("admin", "/administration/audit/", ["首页", "系统管理", "审计日志"]),
    ],
)
def test_section_pages_have_breadcrumbs(
    who: str,
    url: str,
    expected: list[str],
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    response = signed_in_client(getattr(personas, who)).get(url)
    assert response.status_code == 200
    assert crumbs(response.content.decode()) == expected


def test_an_institutions_edit_page_names_the_institution_in_its_crumbs(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    html = (
        signed_in_client(personas.admin)
        .get(f"/administration/institutions/{shell_network.yongren.pk}/edit/")
        .content.decode()
    )
    assert crumbs(html) == ["首页", "系统管理", "机构与科室", "永仁县人民医院", "编辑"]


def links(html: str) -> list[str]:
    """Where the breadcrumbs before the current page lead, first to last."""
    found = re.search(r'<nav class="breadcrumbs[^"]*"[^>]*>(.*?)</nav>', html, re.S)
    assert found, "the page has breadcrumbs"
    return re.findall(r'<a href="([^"]+)"', found.group(1).split('aria-current="page"')[0])


def test_the_other_sections_pages_show_where_they_sit(
    personas: Personas,
    shell_network: Network,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    surgeon = signed_in_client(personas.county_surgeon)
    # a booking of 张三丰 by the county surgeon, under a grade-3 privilege at 双柏
    today = timezone.localdate()
    credentialing.set_institution_licence(
        actor=None, institution=shell_network.shuangbai, hospital_grade=2, max_surgical_grade=3
    )
    credentialing.grant_privilege(
        actor=None,
        surgeon=personas.county_surgeon,
        institution=shell_network.shuangbai,
        technique=None,
        grade=3,
        valid_from=today - timedelta(days=30),
        valid_until=today + timedelta(days=365),
    )
    booked = surgeon.post(
        "/api/v1/scheduling",
        {
            "patient_id": patient_in_shuangbai.pk,
            "procedure_name": "股骨颈骨折空心钉内固定术",
            "grade": 3,
            "surgeon_id": personas.county_surgeon.pk,
            "institution_id": shell_network.shuangbai.pk,
            "scheduled_on": (today + timedelta(days=3)).isoformat(),
        },
        content_type="application/json",
    )
    assert booked.status_code == 201, booked.content
    booking_id = booked.json()["id"]
    bookings = surgeon.get("/scheduling/").content.decode()
    assert crumbs(bookings) == ["首页", "手术预约"] and links(bookings) == ["/"]
    booking = surgeon.get(f"/scheduling/{booking_id}/").content.decode()
    assert crumbs(booking) == ["首页", "手术预约", f"手术预约 #{booking_id} · 张三丰"]
    assert links(booking) == ["/", "/scheduling/"]
    assert current(booking) == f"手术预约 #{booking_id} · 张三丰"

    # the stations: the list, and a finished session of the center surgeon's
    trainee = signed_in_client(personas.center_surgeon)
    session = score_row(enrolled_station(shell_network.center), personas.center_surgeon, score=88)
    session_id = session.session.pk
    stations = trainee.get("/stations/").content.decode()
    assert crumbs(stations) == ["首页", "模拟工作站"] and links(stations) == ["/"]
    detail = trainee.get(f"/stations/sessions/{session_id}/").content.decode()
    assert crumbs(detail) == ["首页", "模拟工作站", "训练记录", f"训练 #{session_id}"]
    assert links(detail) == ["/", "/stations/", "/stations/sessions/"]
    assert current(detail) == f"训练 #{session_id}"

    notifications = surgeon.get("/notifications/").content.decode()
    assert crumbs(notifications) == ["首页", "通知"] and current(notifications) == "通知"

    # credentialing: the index, and the center surgeon's own application
    requirement = credentialing.save_requirement(actor=None, grade=4)
    application = Application.objects.create(
        applicant=personas.center_surgeon,
        requirement=requirement,
        institution=shell_network.center,
    )
    index = trainee.get("/credentialing/").content.decode()
    assert crumbs(index) == ["首页", "资格认证"] and links(index) == ["/"]
    applied = trainee.get(f"/credentialing/applications/{application.pk}/").content.decode()
    assert crumbs(applied) == ["首页", "资格认证", f"授权申请 #{application.pk}"]
    assert links(applied) == ["/", "/credentialing/"]

    security = surgeon.get("/accounts/security/").content.decode()
    assert crumbs(security) == ["首页", "账户安全"] and current(security) == "账户安全"
    tokens = surgeon.get("/accounts/tokens/").content.decode()
    assert crumbs(tokens) == ["首页", "账户安全", "接口令牌"]
    assert links(tokens) == ["/", "/accounts/security/"]


def test_the_sign_in_page_has_no_breadcrumbs(shell_network: Network) -> None:
    assert crumbs(Client().get("/accounts/sign-in/").content.decode()) == []


def _autocomplete(html: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html, re.S)
    assert tag, f"an input named {name}"
    value = re.search(r'autocomplete="([^"]+)"', tag.group(0))
    assert value, f"{name} has an autocomplete attribute"
    return value.group(1)


def test_sign_in_and_password_forms_say_what_each_box_holds(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    sign_in = Client().get("/accounts/sign-in/").content.decode()
    assert _autocomplete(sign_in, "username") == "username"
    assert _autocomplete(sign_in, "password") == "current-password"
    unlock = Client().get("/accounts/unlock/").content.decode()
    assert _autocomplete(unlock, "code") == "one-time-code"
    change = signed_in_client(personas.county_surgeon).get("/accounts/password/").content.decode()
    assert _autocomplete(change, "old_password") == "current-password"
    assert _autocomplete(change, "new_password") == "new-password"
    assert _autocomplete(change, "new_password_again") == "new-password"


def test_registration_forms_offer_no_one_elses_details(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    # an administrator creating an account types another person's name and user name
    new_user = signed_in_client(personas.admin).get("/administration/users/new/").content.decode()
    assert _autocomplete(new_user, "username") == "off"
    assert _autocomplete(new_user, "full_name") == "off"
    assert _autocomplete(new_user, "password") == "new-password"
    # a patient's ID number is never filled from the browser's memory
    new_patient = signed_in_client(personas.township_doctor).get("/patients/new/").content.decode()
    assert _autocomplete(new_patient, "resident_id") == "off"
