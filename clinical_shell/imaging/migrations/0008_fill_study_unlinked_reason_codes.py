# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
# the bilingual sentences stored by earlier uploads become the codes of 0007; backwards, the
# codes become those sentences again

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

# code -> the sentence uploads stored before the codes (as written by imaging/uploads.py)
SENTENCES = {
    "no_patient_id": "DICOM 无患者号 / no PatientID in the file",
    "not_resident_id": "患者号不是身份证号 / PatientID is not a resident ID",
    "no_patient_in_care": "未找到对应患者 / no patient in your care has this ID",
}


def sentences_to_codes(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    study = apps.get_model("imaging", "Study")
    for code, sentence in SENTENCES.items():
        study.objects.filter(unlinked_reason=sentence).update(unlinked_reason=code)


def codes_to_sentences(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    study = apps.get_model("imaging", "Study")
    for code, sentence in SENTENCES.items():
        study.objects.filter(unlinked_reason=code).update(unlinked_reason=sentence)


class Migration(migrations.Migration):
    dependencies = [("imaging", "0007_study_unlinked_reason_codes")]

    operations = [migrations.RunPython(sentences_to_codes, codes_to_sentences)]
