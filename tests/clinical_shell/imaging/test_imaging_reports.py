"""Imaging reports: who may draft, sign and amend, the signed history, and stale versions."""

import io
from pathlib import Path

import pytest
from dicom_samples import ct_series
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.imaging import report_selectors as selectors
from clinical_shell.imaging import report_services as services
from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.models import Study
from clinical_shell.imaging.report_models import ImagingReport, ImagingReportVersion
from clinical_shell.network import services as network
from clinical_shell.records.access import RecordScope
from clinical_shell.records.models import Patient

FULL = services.ReportText(
    technique="右髋关节 CT 平扫 + 三维重建",
    findings="右股骨颈骨皮质连续性中断，断端错位",
    impression="右股骨颈骨折(Garden III 型)",
    recommendation="建议骨科会诊",
)


@pytest.fixture
def ct_study(
    settings: object,
    tmp_path: Path,
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
) -> Study:
    """A CT of the 双柏 patient, uploaded by the 双柏 county hospital."""
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"  # type: ignore[attr-defined]
    imaging.import_upload(
        actor=personas.county_surgeon,
        institution=shell_network.shuangbai,
        files=[(f"{i}.dcm", io.BytesIO(data)) for i, data in enumerate(ct_series(3))],
        patient=patient_in_shuangbai,
    )
    return Study.objects.get()


def _last_event_id() -> int:
    # ids, not counts: PostgreSQL sequences are not reset between tests
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _signed(personas: Personas, study: Study) -> ImagingReport:
    report = services.create_draft(actor=personas.radiologist, study_id=study.pk, text=FULL)
    return services.sign_report(
        actor=personas.radiologist, report_id=report.pk, version=report.version
    )


def test_a_radiologist_of_the_uploading_institution_drafts_and_signs(
    personas: Personas, ct_study: Study
) -> None:
    before = _last_event_id()
    report = services.create_draft(
        actor=personas.radiologist,
        study_id=ct_study.pk,
        urgency="urgent",
        text=services.ReportText(findings="  右股骨颈骨折  "),
    )
    assert (report.state, report.version, report.findings) == ("draft", 1, "右股骨颈骨折")
    report = services.save_draft(
        actor=personas.radiologist,
        report_id=report.pk,
        version=report.version,
        urgency="urgent",
        text=FULL,
    )
    report = services.mark_preliminary(
        actor=personas.radiologist, report_id=report.pk, version=report.version
    )
    assert report.state == "preliminary"
    report = services.sign_report(
        actor=personas.radiologist, report_id=report.pk, version=report.version
    )
    report.refresh_from_db()
    assert report.state == "signed" and report.signed_by == personas.radiologist
    assert report.signed_at is not None and report.version == 4
    [first] = report.versions.all()
    assert (first.number, first.kind, first.impression) == (1, "signature", FULL.impression)
    actions = list(
        AuditEvent.objects.filter(id__gt=before, action__startswith="imaging_report.")
        .order_by("id")
        .values_list("action", "outcome", "patient_id")
    )
    patient_id = ct_study.patient_id
    assert actions == [
        (f"imaging_report.{a}", "success", patient_id)
        for a in ("create", "save", "preliminary", "sign")
    ]


def test_a_surgeon_treating_the_patient_may_not_draft_or_sign(
    personas: Personas, ct_study: Study
) -> None:
    report = services.create_draft(actor=personas.radiologist, study_id=ct_study.pk, text=FULL)
    before = _last_event_id()
    with pytest.raises(PermissionDeniedError) as refused:
        services.sign_report(
            actor=personas.county_surgeon, report_id=report.pk, version=report.version
        )
    assert refused.value.code == "not_reporting_radiologist"
    with pytest.raises(PermissionDeniedError):
        services.create_draft(actor=personas.county_surgeon, study_id=ct_study.pk, text=FULL)
    report.refresh_from_db()
    assert report.state == "draft" and report.version == 1
    refusal = AuditEvent.objects.filter(
        id__gt=before, action="imaging_report.sign", outcome="failure"
    ).get()
    assert refusal.actor_user_id == personas.county_surgeon.pk
    assert refusal.patient_id == ct_study.patient_id


def test_an_outsider_is_refused_with_403_and_audited(
    personas: Personas, ct_study: Study, shell_network: Network
) -> None:
    report = services.create_draft(actor=personas.radiologist, study_id=ct_study.pk, text=FULL)
    before = _last_event_id()
    with pytest.raises(PermissionDeniedError) as refused:
        services.sign_report(actor=personas.outsider, report_id=report.pk, version=1)
    assert refused.value.status == 403
    event = AuditEvent.objects.filter(id__gt=before, outcome="failure").get()
    assert event.actor_user_id == personas.outsider.pk
    assert event.patient_id == ct_study.patient_id
    # a radiologist elsewhere (永仁) has neither the patient nor the study's institution
    network.add_membership(
        actor=None,
        person=personas.outsider.person,
        institution=shell_network.yongren,
        role="radiologist",
    )
    with pytest.raises(PermissionDeniedError):
        services.sign_report(actor=personas.outsider, report_id=report.pk, version=1)
    assert ImagingReport.objects.get().state == "draft"


def test_signing_without_impression_or_findings_lists_every_missing_field(
    personas: Personas, ct_study: Study
) -> None:
    report = services.create_draft(
        actor=personas.radiologist,
        study_id=ct_study.pk,
        text=services.ReportText(technique="CT 平扫"),
    )
    with pytest.raises(services.ReportFormError) as invalid:
        services.sign_report(actor=personas.radiologist, report_id=report.pk, version=1)
    assert invalid.value.status == 422
    assert sorted(invalid.value.errors) == ["findings", "impression"]
    report.refresh_from_db()
    assert report.state == "draft" and report.signed_at is None
    assert not ImagingReportVersion.objects.exists()


def test_a_stale_version_is_a_conflict_and_changes_nothing(
    personas: Personas, ct_study: Study
) -> None:
    report = services.create_draft(actor=personas.radiologist, study_id=ct_study.pk, text=FULL)
    services.save_draft(
        actor=personas.radiologist,
        report_id=report.pk,
        version=1,
        urgency="emergency",
        text=FULL,
    )
    with pytest.raises(DomainError) as conflict:
        services.sign_report(actor=personas.radiologist, report_id=report.pk, version=1)
    assert (conflict.value.status, conflict.value.code) == (409, "report_changed")
    report.refresh_from_db()
    assert (report.state, report.version, report.urgency) == ("draft", 2, "emergency")


def test_amending_keeps_every_signed_version_with_its_reason(
    personas: Personas, ct_study: Study
) -> None:
    report = _signed(personas, ct_study)
    with pytest.raises(services.ReportFormError) as invalid:
        services.amend_report(
            actor=personas.radiologist,
            report_id=report.pk,
            version=report.version,
            text=services.ReportText(),
            reason="",
        )
    assert sorted(invalid.value.errors) == ["findings", "impression", "reason"]
    amended_text = services.ReportText(
        findings=FULL.findings, impression="右股骨颈骨折(Garden IV 型)"
    )
    report = services.amend_report(
        actor=personas.radiologist,
        report_id=report.pk,
        version=report.version,
        text=amended_text,
        reason="复阅三维重建后分型更正",
    )
    report = services.amend_report(
        actor=personas.radiologist,
        report_id=report.pk,
        version=report.version,
        text=services.ReportText(findings=FULL.findings, impression="右股骨颈骨折，移位明显"),
        reason="补充描述",
    )
    report.refresh_from_db()
    assert report.state == "amended" and report.impression == "右股骨颈骨折，移位明显"
    versions = list(report.versions.order_by("number"))
    assert [(v.number, v.kind, v.impression, v.reason) for v in versions] == [
        (1, "signature", FULL.impression, ""),
        (2, "amendment", "右股骨颈骨折(Garden IV 型)", "复阅三维重建后分型更正"),
        (3, "amendment", "右股骨颈骨折，移位明显", "补充描述"),
    ]
    amend_events = AuditEvent.objects.filter(action="imaging_report.amend", outcome="success")
    assert [e.detail["reason"] for e in amend_events.order_by("id")] == [
        "复阅三维重建后分型更正",
        "补充描述",
    ]
    # a signed report is changed only by amendment
    with pytest.raises(DomainError) as illegal:
        services.save_draft(
            actor=personas.radiologist,
            report_id=report.pk,
            version=report.version,
            urgency="routine",
            text=FULL,
        )
    assert illegal.value.code == "report_state"


def test_the_patient_timeline_gets_shared_reports_newest_first(
    personas: Personas, ct_study: Study, shell_network: Network
) -> None:
    assert ct_study.patient_id is not None
    draft_study = Study.objects.create(
        study_uid="1.2.3.9",
        patient_id=ct_study.patient_id,
        linked_by=Study.LinkedBy.UPLOADER,
        uploaded_at=shell_network.shuangbai,
        uploaded_by=personas.county_surgeon,
        description="骨盆正位",
    )
    services.create_draft(actor=personas.radiologist, study_id=draft_study.pk, text=FULL)
    scope = RecordScope(own=frozenset({ct_study.uploaded_at_id, shell_network.shuangbai.pk}))
    assert list(selectors.reports_of_patient(ct_study.patient_id, scope)) == []
    signed = _signed(personas, ct_study)
    assert list(selectors.reports_of_patient(ct_study.patient_id, scope)) == [signed]
    # another institution in care sees the report only when the study is shared with it
    elsewhere = RecordScope(own=frozenset({shell_network.yongren.pk}))
    assert shell_network.yongren.pk != ct_study.uploaded_at_id
    assert list(selectors.reports_of_patient(ct_study.patient_id, elsewhere)) == []
    shared = RecordScope(
        own=frozenset({shell_network.yongren.pk}), shared=frozenset({("study", ct_study.pk)})
    )
    assert list(selectors.reports_of_patient(ct_study.patient_id, shared)) == [signed]
