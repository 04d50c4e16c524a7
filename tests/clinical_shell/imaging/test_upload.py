"""DICOM upload: good files go in (disk + index + audit), each bad one is refused with a reason."""

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dicom_samples import ROOT, ct_series, ct_slice, to_bytes, zip_of
from django.contrib.auth.models import User
from django.test import Client
from pydicom.uid import generate_uid
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging import services
from clinical_shell.imaging.models import Instance, Study
from clinical_shell.records.models import Patient


@pytest.fixture(autouse=True)
def dicom_root(settings: object, tmp_path: Path) -> Path:
    root = tmp_path / "dicom"
    settings.OSTEON_DICOM_ROOT = root  # type: ignore[attr-defined]
    return root


def _upload(
    client: Client, institution_id: int, files: dict[str, bytes], **extra: str
) -> dict[str, Any]:
    handles = []
    for name, data in files.items():
        handle = io.BytesIO(data)
        handle.name = name
        handles.append(handle)
    response = client.post(
        "/imaging/upload/",
        {"institution": str(institution_id), "files": handles, **extra},
        # the reasons below are asserted in English: ask for English as a browser would
        headers={"accept": "application/json", "accept-language": "en"},
    )
    assert response.status_code == 200, response.content
    report: dict[str, Any] = response.json()
    return report


def _stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# pydicom warns while the test builds the hostile UID on purpose
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_good_files_go_in_while_each_bad_one_is_refused_with_its_reason(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    dicom_root: Path,
) -> None:
    good = ct_series(3, patient_id=SHUANGBAI_MAN_ID)
    study_uid = generate_uid(prefix=ROOT)
    truncated = ct_slice(study_uid=study_uid, series_uid=generate_uid(prefix=ROOT))
    truncated.PixelData = truncated.PixelData[:100]
    no_sop = ct_slice(study_uid=study_uid, series_uid=generate_uid(prefix=ROOT))
    del no_sop.SOPInstanceUID
    hostile_uid = ct_slice(study_uid="1.2.3/../../../etc", series_uid=generate_uid(prefix=ROOT))
    no_pixels = ct_slice(study_uid=study_uid, series_uid=generate_uid(prefix=ROOT))
    del no_pixels.PixelData
    files = {
        "slice1.dcm": good[0],
        "notes.txt": "这不是影像".encode(),
        "empty.dcm": b"",
        "truncated.dcm": to_bytes(truncated),
        "no_sop.dcm": to_bytes(no_sop),
        "hostile.dcm": to_bytes(hostile_uid),
        "no_pixels.dcm": to_bytes(no_pixels),
        "half_header.dcm": good[1][:300],
        "series.zip": zip_of(
            {
                "a/slice2.dcm": good[1],
                "../../escape.dcm": good[2],
                "inner.zip": zip_of({"x.dcm": good[2]}),
                "b/slice3.dcm": good[2],
            }
        ),
        "broken.zip": b"PK\x03\x04" + b"\x00" * 40,
    }
    client = signed_in_client(personas.county_surgeon)
    report = _upload(client, shell_network.shuangbai.pk, files)

    refused = {r["name"]: r["reason"] for r in report["refused"]}
    assert "not a DICOM Part 10 file" in refused["notes.txt"]
    assert "empty file" in refused["empty.dcm"]
    assert "pixel data truncated" in refused["truncated.dcm"]
    assert "missing SOPInstanceUID" in refused["no_sop.dcm"]
    assert "not a valid DICOM UID" in refused["hostile.dcm"]
    assert "no pixel data" in refused["no_pixels.dcm"]
    assert "half_header.dcm" in refused
    assert refused["series.zip/../../escape.dcm"] == "Unsafe path inside the zip"
    assert refused["series.zip/inner.zip"] == "Nested zip archives are not accepted"
    assert refused["broken.zip"] == "Damaged zip archive"
    assert len(refused) == 10
    # the three good slices are indexed, on disk under their UIDs, and nothing else is
    assert sorted(s["name"] for s in report["stored"]) == [
        "series.zip/a/slice2.dcm",
        "series.zip/b/slice3.dcm",
        "slice1.dcm",
    ]
    instances = list(Instance.objects.order_by("slice_position_mm"))
    assert [i.slice_position_mm for i in instances] == [0.0, 1.25, 2.5]
    on_disk = _stored_files(dicom_root)
    assert on_disk == sorted(services.instance_path(i) for i in instances)
    assert on_disk[0].read_bytes() in good
    assert not any("etc" in str(p) or p.name.endswith(".part") for p in on_disk)
    # the PatientID is the resident ID of a patient the uploader treats: linked at once
    study = Study.objects.get()
    assert study.patient_id == patient_in_shuangbai.pk
    assert study.linked_by == Study.LinkedBy.RESIDENT_ID
    imports = AuditEvent.objects.filter(action="study.import")
    assert [(e.patient_id, e.detail["instances_added"]) for e in imports] == [
        (patient_in_shuangbai.pk, 3)
    ]
    upload_event = AuditEvent.objects.get(action="imaging.upload")
    assert upload_event.outcome == "failure" and len(upload_event.detail["refused"]) == 10


def test_same_uid_again_is_idempotent_but_different_content_is_refused(
    shell_network: Network,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(personas.county_surgeon)
    first = ct_slice(study_uid=generate_uid(prefix=ROOT), series_uid=generate_uid(prefix=ROOT))
    _upload(client, shell_network.shuangbai.pk, {"a.dcm": to_bytes(first)})
    again = _upload(client, shell_network.shuangbai.pk, {"a.dcm": to_bytes(first)})
    assert again["stored"][0]["new"] is False
    first.PatientName = "OTHER^NAME"
    changed = _upload(client, shell_network.shuangbai.pk, {"a.dcm": to_bytes(first)})
    assert changed["refused"][0]["reason"] == "SOP UID already stored with different data"
    assert Instance.objects.count() == 1


def test_an_upload_learns_nothing_of_another_institutions_study(
    shell_network: Network,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    """Uploading a study whose UIDs another institution already holds answers exactly as a
    never-seen study does, and leaves the other institution's study as it was."""
    held = ct_slice(study_uid=generate_uid(prefix=ROOT), series_uid=generate_uid(prefix=ROOT))
    _upload(
        signed_in_client(personas.county_surgeon),
        shell_network.shuangbai.pk,
        {"a.dcm": to_bytes(held)},
    )
    theirs = Study.objects.get()
    fresh = ct_slice(study_uid=generate_uid(prefix=ROOT), series_uid=generate_uid(prefix=ROOT))
    outsider = signed_in_client(personas.outsider)
    known = _upload(outsider, shell_network.yongren.pk, {"a.dcm": to_bytes(held)})
    unknown = _upload(outsider, shell_network.yongren.pk, {"a.dcm": to_bytes(fresh)})

    def shape(report: dict[str, Any]) -> object:
        return (
            [(item["name"], item["new"]) for item in report["stored"]],
            report["refused"],
            [{k: v for k, v in study.items() if k != "id"} for study in report["studies"]],
        )

    assert shape(known) == shape(unknown)
    mine = Study.objects.exclude(pk=theirs.pk).filter(study_uid=theirs.study_uid).get()
    assert mine.uploaded_at_id == shell_network.yongren.pk
    assert theirs.series.get().instances.count() == 1  # untouched
    paths = set(
        Instance.objects.filter(sop_uid=held.SOPInstanceUID).values_list("relative_path", flat=True)
    )
    assert len(paths) == 2  # each institution keeps its own file


def test_an_unknown_patient_id_goes_to_the_reconciliation_queue_and_can_be_linked(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(personas.radiologist)
    report = _upload(
        client, shell_network.shuangbai.pk, {"x.dcm": ct_series(1, patient_id="RIS-0042")[0]}
    )
    study = Study.objects.get()
    assert study.patient_id is None
    # stored as a code; the report gives the code and its words in the request's language
    assert study.unlinked_reason == Study.UnlinkedReason.NOT_RESIDENT_ID
    assert report["studies"][0]["unlinked_reason"] == "not_resident_id"
    assert report["studies"][0]["unlinked_reason_label"] == "The PatientID is not a resident ID"
    # queue: visible at the uploading institution only
    assert "RIS-0042" in client.get("/imaging/").content.decode()
    outsider = signed_in_client(personas.outsider)
    assert "RIS-0042" not in outsider.get("/imaging/").content.decode()
    assert outsider.post(f"/imaging/studies/{study.pk}/link/", {"patient": "1"}).status_code == 403
    # a radiologist cannot write the record; the county surgeon links it, giving a reason
    refused = client.post(
        f"/imaging/studies/{study.pk}/link/",
        {"patient": str(patient_in_shuangbai.pk), "reason": "核对姓名与出生日期"},
    )
    assert refused.status_code == 403
    surgeon = signed_in_client(personas.county_surgeon)
    response = surgeon.post(
        f"/imaging/studies/{study.pk}/link/",
        {"patient": str(patient_in_shuangbai.pk), "reason": "核对姓名与出生日期"},
    )
    assert response.status_code == 302
    # proposed, not linked: a second person approves (test_study_link_approval.py)
    assert Study.objects.get(pk=study.pk).patient_id is None
    event = AuditEvent.objects.filter(action="study.link_request").get()
    assert event.patient_id == patient_in_shuangbai.pk and event.reason == "核对姓名与出生日期"


def test_a_resident_id_of_a_patient_not_in_your_care_is_not_linked(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(personas.outsider)
    _upload(
        client, shell_network.yongren.pk, {"x.dcm": ct_series(1, patient_id=SHUANGBAI_MAN_ID)[0]}
    )
    study = Study.objects.get()
    assert study.patient_id is None
    assert study.unlinked_reason == Study.UnlinkedReason.NO_PATIENT_IN_CARE


def test_upload_needs_a_clinical_role_at_the_institution(
    shell_network: Network,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    for user, institution in (
        (personas.outsider, shell_network.shuangbai),
        (personas.quality_manager, shell_network.center),
    ):
        data = io.BytesIO(ct_series(1)[0])
        data.name = "x.dcm"
        response = signed_in_client(user).post(
            "/imaging/upload/", {"institution": str(institution.pk), "files": [data]}
        )
        assert response.status_code == 403
    assert Instance.objects.count() == 0
