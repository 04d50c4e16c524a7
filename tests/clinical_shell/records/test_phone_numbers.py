"""A patient's phone number is a mainland mobile or a landline with its area code: anything else
is refused on its field with a clear message (with the other errors, nothing saved); what is
accepted is stored in one form, full-width digits and separators included."""

from typing import Any

import pytest
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas

from clinical_shell.records import services as records
from clinical_shell.records.identity import PhoneError, normalize_phone
from clinical_shell.records.models import Patient

SHUANGBAI_WOMAN_ID = "532322199007212462"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("１３８ １２３４ ５６７８", "13812345678"),  # full-width, as a Chinese input method types
        ("0878-3123456", "0878-3123456"),
        ("(0878) 3123456", "0878-3123456"),
        ("（０８７８）３１２３４５６", "0878-3123456"),
        ("01062345678", "010-62345678"),  # Beijing: a two-digit area code after the 0
        ("021 6234 5678", "021-62345678"),
        ("", ""),
    ],
)
def test_mobiles_and_landlines_are_stored_in_one_form(typed: str, stored: str) -> None:
    assert normalize_phone(typed) == stored


@pytest.mark.parametrize(
    "typed", ["打电话给他", "12345", "12812345678", "138123456789", "3123456", "0878-0123456"]
)
def test_other_text_is_refused(typed: str) -> None:
    with pytest.raises(PhoneError):
        normalize_phone(typed)


def test_registration_refuses_a_bad_number_beside_the_other_errors_and_saves_nothing(
    shell_network: Network, personas: Personas, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    form = {
        "name": "李秀英",
        "sex": "M",  # the ID number says female: a second error on the same page
        "birth_date": "1990-07-21",
        "resident_id": SHUANGBAI_WOMAN_ID,
        "phone": "问家属",
        "address": "",
        "institution": str(shell_network.shuangbai.pk),
    }
    response = client.post("/patients/new/", form)
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="id_phone-errors"' in html and "座机须带区号" in html
    # what the field points screen readers at (aria-describedby: hint, error) is on the page
    assert 'aria-describedby="id_phone_helptext id_phone_error"' in html
    assert 'id="id_phone_helptext"' in html and 'id="id_phone_error"' in html
    assert "性别与身份证号不符" in html
    assert not Patient.objects.filter(name="李秀英").exists()
    saved = client.post("/patients/new/", {**form, "sex": "F", "phone": "１３８００００００００"})
    assert saved.status_code == 302
    assert Patient.objects.get(name="李秀英").phone == "13800000000"


def test_the_edit_page_refuses_a_bad_number_in_english_too(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    client.cookies["django_language"] = "en"
    form = {
        "name": "张三丰",
        "sex": "M",
        "birth_date": "1958-03-14",
        "resident_id": SHUANGBAI_MAN_ID,
        "phone": "0878",
        "address": "",
        "reason": "new phone",
    }
    url = f"/patients/{patient_in_shuangbai.pk}/edit/"
    response = client.post(url, form)
    assert response.status_code == 422
    assert "a landline needs its area code" in response.content.decode()
    patient_in_shuangbai.refresh_from_db()
    assert patient_in_shuangbai.version == 1


def test_the_service_refuses_a_bad_number_from_any_caller(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    with pytest.raises(records.RecordValidationError) as refused:
        records.update_patient(
            actor=personas.county_surgeon,
            patient=patient_in_shuangbai,
            reason="电话",
            phone="138-no",
        )
    assert set(refused.value.field_errors) == {"phone"}


def test_a_number_stored_before_the_check_may_stay_while_other_fields_change(
    personas: Personas, patient_in_shuangbai: Patient
) -> None:
    Patient.objects.filter(pk=patient_in_shuangbai.pk).update(phone="问家属")
    patient_in_shuangbai.refresh_from_db()
    records.update_patient(
        actor=personas.county_surgeon,
        patient=patient_in_shuangbai,
        reason="住址",
        phone="问家属",
        address="双柏县城",
    )
    patient_in_shuangbai.refresh_from_db()
    assert patient_in_shuangbai.address == "双柏县城" and patient_in_shuangbai.phone == "问家属"
