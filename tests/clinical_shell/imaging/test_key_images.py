"""Key images: marked and unmarked by whoever may view the study, listed in viewing order,
refused to another institution's staff, every mark audited; the report page lists them."""

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from dicom_samples import ct_series
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.key_images_models import KeyImage
from clinical_shell.imaging.models import Instance, Study
from clinical_shell.imaging.selectors import instances_in_viewing_order
from clinical_shell.records.models import Patient

ClientFor = Callable[[User], Client]


@pytest.fixture
def ct_study(
    settings: object,
    tmp_path: Path,
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
) -> Study:
    """A five-slice CT of the 双柏 patient, uploaded by the 双柏 county hospital."""
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"  # type: ignore[attr-defined]
    imaging.import_upload(
        actor=personas.county_surgeon,
        institution=shell_network.shuangbai,
        files=[(f"{i}.dcm", io.BytesIO(data)) for i, data in enumerate(ct_series(5))],
        patient=patient_in_shuangbai,
    )
    return Study.objects.get()


def _slices(study: Study) -> list[Instance]:
    return list(instances_in_viewing_order(study.series.get().pk))


def _url(study: Study, instance: Instance | None = None) -> str:
    base = f"/api/v1/imaging/studies/{study.pk}/key-images"
    return base if instance is None else f"{base}/{instance.pk}"


def _put(client: Client, url: str, note: str) -> object:
    return client.put(url, data=json.dumps({"note": note}), content_type="application/json")


def _last_event_id() -> int:
    # ids, not counts: PostgreSQL sequences are not reset between tests
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_a_radiologist_marks_a_slice_and_a_surgeon_sees_it_listed(
    signed_in_client: ClientFor, personas: Personas, ct_study: Study
) -> None:
    third = _slices(ct_study)[2]
    before = _last_event_id()
    marked = _put(signed_in_client(personas.radiologist), _url(ct_study, third), " 骨折线 ")
    assert marked.status_code == 200  # type: ignore[attr-defined]
    listed = signed_in_client(personas.county_surgeon).get(_url(ct_study))
    assert listed.status_code == 200
    [row] = listed.json()
    assert (row["instance_id"], row["slice_number"], row["slice_count"]) == (third.pk, 3, 5)
    assert (
        row["note"] == "骨折线" and row["marked_by_name"] == personas.radiologist.person.full_name
    )
    mark = AuditEvent.objects.filter(id__gt=before, action="key_image.mark").get()
    assert (mark.actor_user_id, mark.patient_id, mark.outcome) == (
        personas.radiologist.pk,
        ct_study.patient_id,
        "success",
    )


def test_marking_again_changes_the_note_and_unmarking_removes_it(
    signed_in_client: ClientFor, personas: Personas, ct_study: Study
) -> None:
    client = signed_in_client(personas.county_surgeon)
    first, second = _slices(ct_study)[:2]
    _put(client, _url(ct_study, second), "")
    _put(client, _url(ct_study, first), "")
    again = _put(client, _url(ct_study, second), "螺钉入点")
    # by slice, whatever the order of marking; a second mark is a note change, not a duplicate
    assert [(r["slice_number"], r["note"]) for r in again.json()] == [(1, ""), (2, "螺钉入点")]  # type: ignore[attr-defined]
    before = _last_event_id()
    gone = client.delete(_url(ct_study, second))
    assert gone.status_code == 200 and [r["slice_number"] for r in gone.json()] == [1]
    assert list(KeyImage.objects.values_list("instance_id", flat=True)) == [first.pk]
    event = AuditEvent.objects.filter(id__gt=before, action="key_image.unmark").get()
    assert event.detail["note"] == "螺钉入点" and event.patient_id == ct_study.patient_id
    assert client.delete(_url(ct_study, second)).status_code == 404


def test_another_institutions_surgeon_is_refused_and_the_refusal_audited(
    signed_in_client: ClientFor, personas: Personas, ct_study: Study
) -> None:
    slice_ = _slices(ct_study)[0]
    _put(signed_in_client(personas.radiologist), _url(ct_study, slice_), "原有")
    outsider = signed_in_client(personas.outsider)
    before = _last_event_id()
    assert outsider.get(_url(ct_study)).status_code == 403
    assert _put(outsider, _url(ct_study, _slices(ct_study)[1]), "x").status_code == 403  # type: ignore[attr-defined]
    assert outsider.delete(_url(ct_study, slice_)).status_code == 403
    assert list(KeyImage.objects.values_list("instance_id", "note")) == [(slice_.pk, "原有")]
    refusals = AuditEvent.objects.filter(
        id__gt=before, actor_user_id=personas.outsider.pk, outcome="failure"
    )
    assert refusals.count() >= 3
    assert not AuditEvent.objects.filter(id__gt=before, action__startswith="key_image.").exists()


def test_a_slice_of_another_study_cannot_be_filed_as_a_key_image(
    signed_in_client: ClientFor,
    personas: Personas,
    shell_network: Network,
    ct_study: Study,
    patient_in_shuangbai: Patient,
) -> None:
    imaging.import_upload(
        actor=personas.county_surgeon,
        institution=shell_network.shuangbai,
        files=[(f"{i}.dcm", io.BytesIO(data)) for i, data in enumerate(ct_series(3))],
        patient=patient_in_shuangbai,
    )
    other = Study.objects.exclude(pk=ct_study.pk).get()
    foreign = _slices(other)[0]
    answer = _put(signed_in_client(personas.county_surgeon), _url(ct_study, foreign), "")
    assert answer.status_code == 404  # type: ignore[attr-defined]
    assert answer.json()["code"] == "instance_not_in_study"  # type: ignore[attr-defined]
    assert not KeyImage.objects.exists()


def test_a_note_longer_than_a_label_is_refused(
    signed_in_client: ClientFor, personas: Personas, ct_study: Study
) -> None:
    answer = _put(
        signed_in_client(personas.county_surgeon), _url(ct_study, _slices(ct_study)[0]), "长" * 201
    )
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert not KeyImage.objects.exists()


def test_the_report_page_lists_the_key_slices(
    signed_in_client: ClientFor, personas: Personas, ct_study: Study
) -> None:
    fourth = _slices(ct_study)[3]
    _put(signed_in_client(personas.radiologist), _url(ct_study, fourth), "股骨颈骨折线")
    page = signed_in_client(personas.county_surgeon).get(
        reverse("radiology:study_report", args=[ct_study.pk])
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="key-images"' in html and "股骨颈骨折线" in html
    # each key slice opens the viewer on that slice
    series_id = fourth.series_id
    assert f"/imaging/series/{series_id}/#slice={fourth.pk}" in html


def test_the_key_image_list_takes_as_many_queries_for_five_as_for_one(
    signed_in_client: ClientFor, personas: Personas, ct_study: Study
) -> None:
    client = signed_in_client(personas.county_surgeon)
    slices = _slices(ct_study)
    _put(client, _url(ct_study, slices[0]), "")
    client.get(_url(ct_study))  # warm: the session and role lookups

    def queries_to_list(expected: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert len(client.get(_url(ct_study)).json()) == expected
        return len(queries)

    for_one = queries_to_list(1)
    for slice_ in slices[1:]:
        _put(client, _url(ct_study, slice_), "")
    assert queries_to_list(5) == for_one
