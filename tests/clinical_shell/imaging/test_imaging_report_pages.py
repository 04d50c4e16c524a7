"""Imaging report pages and API: the work list's order and pages, the editor -> confirm -> signed
-> amended flow in Chinese and in English, and the API's problem details."""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas
from test_translations import other_language_in, visible_text, without_data

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging import report_services as services
from clinical_shell.imaging.models import Series, Study
from clinical_shell.imaging.report_models import ImagingReport
from clinical_shell.records.models import Patient

API = "/api/v1/imaging-reports"
FULL = services.ReportText(
    technique="右髋关节 CT 平扫",
    findings="右股骨颈骨皮质连续性中断",
    impression="右股骨颈骨折",
    recommendation="建议骨科会诊",
)


def _study(net: Network, personas: Personas, patient: Patient | None, n: int, **kw: Any) -> Study:
    study = Study.objects.create(
        study_uid=f"1.2.826.0.1.{n}",
        patient=patient,
        linked_by=Study.LinkedBy.UPLOADER if patient else Study.LinkedBy.NONE,
        uploaded_at=kw.pop("at", net.shuangbai),
        uploaded_by=personas.county_surgeon,
        description=kw.pop("description", f"右髋 CT {n}"),
        study_date=timezone.localdate() - timedelta(days=n),
    )
    Series.objects.create(study=study, series_uid=f"1.2.826.0.2.{n}", modality="CT", number=1)
    # waiting time: study n arrived n hours ago
    Study.objects.filter(pk=study.pk).update(created_at=timezone.now() - timedelta(hours=n))
    return study


def _post(client: Client, url: str, body: dict[str, Any], method: str = "post") -> Any:
    send = getattr(client, method)
    return send(url, json.dumps(body), content_type="application/json")


def test_the_work_list_is_urgent_first_then_oldest_and_paginated(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    django_assert_max_num_queries: Any,
) -> None:
    net, radiologist = shell_network, personas.radiologist
    studies = [_study(net, personas, patient_in_shuangbai, n) for n in range(1, 24)]
    # study 3 is an emergency, study 5 urgent (their drafts say so); study 7 is signed
    for n, urgency in ((3, "emergency"), (5, "urgent"), (7, "routine")):
        services.create_draft(
            actor=radiologist, study_id=studies[n - 1].pk, urgency=urgency, text=FULL
        )
    signed = ImagingReport.objects.get(study=studies[6])
    services.sign_report(actor=radiologist, report_id=signed.pk, version=signed.version)
    # not on the list: a study waiting for reconciliation, and one of another institution
    _study(net, personas, None, 40)
    _study(net, personas, patient_in_shuangbai, 41, at=net.yongren)

    client = signed_in_client(radiologist)
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    # session, user, radiologist's institutions, count, rows (one query for every row), the
    # audit event (savepoint, last hash, insert, release), the session's save (4)
    # PostgreSQL also takes the audit chain's advisory lock: one query more than SQLite
    with django_assert_max_num_queries(13):
        first = client.get(f"{API}/worklist")
    assert first.status_code == 200
    body = first.json()
    expected = [3, 5] + [n for n in range(23, 0, -1) if n not in (3, 5, 7)]
    assert body["count"] == 22
    ids = [row["study_id"] for row in body["items"]]
    second = client.get(f"{API}/worklist?page=2").json()
    ids += [row["study_id"] for row in second["items"]]
    assert ids == [studies[n - 1].pk for n in expected]
    assert (
        body["items"][0]["urgency"] == "emergency" and body["items"][0]["report_state"] == "draft"
    )
    assert body["items"][2]["modality"] == "CT" and body["items"][2]["report_id"] is None

    # the page: 20 rows, then the rest; filters by urgency and patient name
    page = client.get("/imaging/reports/")
    assert page.status_code == 200
    html = page.content.decode()
    rows = [f'data-study="{studies[n - 1].pk}"' for n in expected[:20]]
    assert all(r in html for r in rows) and f'data-study="{studies[0].pk}"' not in html
    assert html.index(rows[0]) < html.index(rows[1]) < html.index(rows[2])
    page2 = client.get("/imaging/reports/?page=2").content.decode()
    assert page2.count("data-study=") == 2
    urgent = client.get("/imaging/reports/?urgency=urgent").content.decode()
    assert urgent.count("data-study=") == 1
    assert client.get("/imaging/reports/?q=张三").content.decode().count("data-study=") == 20
    assert client.get("/imaging/reports/?q=李四").content.decode().count("data-study=") == 0
    # each list names patients: audited, the API's first page with the studies it showed
    listed = AuditEvent.objects.filter(id__gt=before, action="imaging_report.worklist")
    assert listed.count() == 7
    first_listed = listed.order_by("id").first()
    assert first_listed is not None and first_listed.actor_user_id == radiologist.pk
    assert first_listed.detail["study_ids"] == ids[:20]
    # a surgeon is no radiologist: an empty list
    surgeon = signed_in_client(personas.county_surgeon).get(f"{API}/worklist").json()
    assert surgeon["count"] == 0


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_report_pages_render_in_each_language_through_the_whole_flow(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    language: str,
) -> None:
    study = _study(shell_network, personas, patient_in_shuangbai, 1)
    client = signed_in_client(personas.radiologist)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    data = {
        patient_in_shuangbai.name,
        personas.radiologist.person.full_name,
        shell_network.shuangbai.name,
        study.description,
        *FULL.__dict__.values(),
        "复阅后更正",
        "右股骨颈骨折，移位",
        # the language switch names each language in itself
        "简体中文",
        "English",
    }
    seen: dict[str, str] = {}

    def look(name: str, response: Any, status: int = 200) -> str:
        assert response.status_code == status, (name, response.status_code)
        html: str = response.content.decode()
        seen[name] = html
        return html

    url = f"/imaging/reports/studies/{study.pk}/"
    look("worklist", client.get("/imaging/reports/"))
    editor = look("empty editor", client.get(url))
    series = Series.objects.get(study=study)
    assert f'href="/imaging/series/{series.pk}/"' in editor
    # signing without impression: every missing field shown, nothing signed
    started = client.post(url, {"action": "sign", "technique": "CT"})
    assert started.status_code == 302
    report = ImagingReport.objects.get()
    look("sign refused", client.post(f"/imaging/reports/{report.pk}/sign/", {"version": 1}), 422)
    assert 'data-error="findings"' in seen["sign refused"]
    assert 'data-error="impression"' in seen["sign refused"]
    # save the text, then confirm
    form = {**FULL.__dict__, "urgency": "urgent", "version": "1", "action": "sign"}
    saved = client.post(url, form)
    assert saved.status_code == 302 and saved["Location"] == f"/imaging/reports/{report.pk}/sign/"
    confirm = look("confirm", client.get(saved["Location"]))
    assert 'name="version" value="2"' in confirm and FULL.impression in confirm
    assert client.post(saved["Location"], {"version": "2"}).status_code == 302
    report.refresh_from_db()
    assert report.state == "signed"
    look("signed", client.get(url))
    look("print", client.get(f"/imaging/reports/{report.pk}/print/"))
    look("amend", client.get(f"/imaging/reports/{report.pk}/amend/"))
    no_reason = {**FULL.__dict__, "impression": "右股骨颈骨折，移位", "version": "3"}
    look("amend refused", client.post(f"/imaging/reports/{report.pk}/amend/", no_reason), 422)
    assert 'data-error="reason"' in seen["amend refused"]
    amended = client.post(
        f"/imaging/reports/{report.pk}/amend/", {**no_reason, "reason": "复阅后更正"}
    )
    assert amended.status_code == 302
    history = look("amended", client.get(url))
    assert 'data-version="2"' in history and 'data-version="1"' in history
    assert "复阅后更正" in history
    # a stale form is a conflict, shown on the page
    look(
        "stale",
        client.post(f"/imaging/reports/{report.pk}/amend/", no_reason | {"reason": "x"}),
        409,
    )

    leftovers = {}
    for name, html in seen.items():
        assert f'<html lang="{"en" if language == "en" else "zh-CN"}">' in html, name
        found = other_language_in(without_data(visible_text(html), data), language)
        if found:
            leftovers[name] = found
    assert leftovers == {}


def test_a_surgeon_sees_the_signed_report_but_no_editor(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    study = _study(shell_network, personas, patient_in_shuangbai, 1)
    url = f"/imaging/reports/studies/{study.pk}/"
    surgeon = signed_in_client(personas.county_surgeon)
    assert 'data-role="editor"' not in surgeon.get(url).content.decode()
    assert surgeon.post(url, {**FULL.__dict__, "action": "save"}).status_code == 403
    assert not ImagingReport.objects.exists()
    report = services.create_draft(actor=personas.radiologist, study_id=study.pk, text=FULL)
    services.sign_report(actor=personas.radiologist, report_id=report.pk, version=1)
    page = surgeon.get(url).content.decode()
    assert FULL.impression in page and 'data-action="amend"' not in page
    assert signed_in_client(personas.outsider).get(url).status_code == 403


def test_the_patient_timeline_shows_reports_once_they_leave_draft(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    study = _study(shell_network, personas, patient_in_shuangbai, 1)
    report = services.create_draft(actor=personas.radiologist, study_id=study.pk, text=FULL)
    surgeon = signed_in_client(personas.county_surgeon)
    timeline = f"/patients/{patient_in_shuangbai.pk}/"
    assert FULL.impression not in surgeon.get(timeline).content.decode()  # a draft is private
    services.sign_report(actor=personas.radiologist, report_id=report.pk, version=1)
    page = surgeon.get(timeline).content.decode()
    section = page[page.index('id="imaging-reports"') :]
    assert FULL.impression in section and f"/imaging/reports/studies/{study.pk}/" in section


def test_the_viewer_shows_the_report_beside_the_images(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    study = _study(shell_network, personas, patient_in_shuangbai, 1)
    series = Series.objects.get(study=study)
    report = services.create_draft(actor=personas.radiologist, study_id=study.pk, text=FULL)
    surgeon = signed_in_client(personas.county_surgeon)
    viewer = f"/imaging/series/{series.pk}/"
    page = surgeon.get(viewer).content.decode()
    assert 'id="study-report" style="margin:12px 0 0" data-state="none"' in page
    assert FULL.impression not in page
    services.sign_report(actor=personas.radiologist, report_id=report.pk, version=1)
    page = surgeon.get(viewer).content.decode()
    panel = page[page.index('id="study-report"') :]
    assert 'data-state="signed"' in panel[:80] and FULL.impression in panel
    assert FULL.findings in panel


def test_the_api_answers_with_problem_details(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    study = _study(shell_network, personas, patient_in_shuangbai, 1)
    radiologist = signed_in_client(personas.radiologist)
    none_yet = radiologist.get(f"{API}/studies/{study.pk}")
    assert none_yet.status_code == 404 and none_yet.json()["code"] == "report_not_found"

    created = _post(radiologist, f"{API}/studies/{study.pk}", {"technique": "CT"})
    assert created.status_code == 201
    report = created.json()
    assert (report["state"], report["version"], report["versions"]) == ("draft", 1, [])
    rid = report["id"]

    twice = _post(radiologist, f"{API}/studies/{study.pk}", {})
    assert twice.status_code == 409 and twice.json()["code"] == "report_exists"

    missing = _post(radiologist, f"{API}/{rid}/sign", {"version": 1})
    assert missing.status_code == 422
    assert missing["Content-Type"] == "application/problem+json"
    problem = missing.json()
    assert problem["code"] == "report_invalid" and problem["status"] == 422
    assert sorted(e["field"] for e in problem["errors"]) == ["findings", "impression"]

    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    surgeon = _post(signed_in_client(personas.county_surgeon), f"{API}/{rid}/sign", {"version": 1})
    assert surgeon.status_code == 403 and surgeon.json()["code"] == "not_reporting_radiologist"
    outsider = signed_in_client(personas.outsider).get(f"{API}/{rid}")
    assert outsider.status_code == 403 and outsider.json()["code"] == "patient_forbidden"
    failures = AuditEvent.objects.filter(id__gt=before, outcome="failure")
    assert {e.actor_user_id for e in failures} == {
        personas.county_surgeon.pk,
        personas.outsider.pk,
    }

    body = {**FULL.__dict__, "urgency": "urgent", "version": 1}
    saved = _post(radiologist, f"{API}/{rid}", body, method="put")
    assert saved.status_code == 200 and saved.json()["version"] == 2
    stale = _post(radiologist, f"{API}/{rid}", body, method="put")
    assert stale.status_code == 409 and stale.json()["code"] == "report_changed"
    assert stale["Content-Type"] == "application/problem+json"

    signed = _post(radiologist, f"{API}/{rid}/sign", {"version": 2})
    assert signed.status_code == 200 and signed.json()["state"] == "signed"
    amended = _post(
        radiologist,
        f"{API}/{rid}/amend",
        {**FULL.__dict__, "impression": "右股骨颈骨折(移位)", "reason": "更正", "version": 3},
    )
    assert amended.status_code == 200
    out = amended.json()
    assert out["state"] == "amended"
    assert [(v["number"], v["reason"]) for v in out["versions"]] == [(1, ""), (2, "更正")]
    assert radiologist.get(f"{API}/999999").status_code == 404
    english = radiologist.get(f"{API}/999999", HTTP_ACCEPT_LANGUAGE="en").json()
    assert english["detail"] == "No imaging report with number 999999"
