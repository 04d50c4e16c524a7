"""Migration imaging 0008: the reasons stored as bilingual sentences become codes, and back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from shell_personas import Network, Personas

BEFORE = [("imaging", "0006_case_build_status_in_job")]
AFTER = [("imaging", "0008_fill_study_unlinked_reason_codes")]
SENTENCES = {
    "no_patient_id": "DICOM 无患者号 / no PatientID in the file",
    "not_resident_id": "患者号不是身份证号 / PatientID is not a resident ID",
    "no_patient_in_care": "未找到对应患者 / no patient in your care has this ID",
}


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_stored_sentences_become_codes_and_back(shell_network: Network, personas: Personas) -> None:
    executor = migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        study_model = old.get_model("imaging", "Study")
        rows = {}
        for n, (code, sentence) in enumerate([*SENTENCES.items(), ("", "")]):
            study = study_model.objects.create(
                study_uid=f"1.2.3.{n}",
                linked_by="none" if code else "uploader",
                unlinked_reason=sentence,
                uploaded_at_id=shell_network.shuangbai.pk,
                uploaded_by_id=personas.county_surgeon.pk,
            )
            rows[study.pk] = (code, sentence)

        executor = migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps.get_model("imaging", "Study")
        assert dict(new.objects.values_list("pk", "unlinked_reason")) == {
            pk: code for pk, (code, _) in rows.items()
        }

        executor = migrate(BEFORE)
        back = executor.loader.project_state(BEFORE).apps.get_model("imaging", "Study")
        assert dict(back.objects.values_list("pk", "unlinked_reason")) == {
            pk: sentence for pk, (_, sentence) in rows.items()
        }
    finally:
        migrate(executor.loader.graph.leaf_nodes())
