"""Migration imaging 0005: builds made before the jobs app get a job with the status they had."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from shell_personas import Network, Personas

from clinical_shell.records.models import Patient

BEFORE = [("imaging", "0004_case_build_job_link")]
AFTER = [("imaging", "0006_case_build_status_in_job")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_old_builds_get_jobs_and_unfinished_ones_are_failed_as_lost(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    executor = migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        study = old.get_model("imaging", "Study").objects.create(
            study_uid="1.2.3",
            patient_id=patient_in_shuangbai.pk,
            linked_by="uploader",
            uploaded_at_id=shell_network.shuangbai.pk,
            uploaded_by_id=personas.county_surgeon.pk,
        )
        series = old.get_model("imaging", "Series").objects.create(
            study=study, series_uid="1.2.3.4", modality="CT"
        )
        build_model = old.get_model("imaging", "CaseBuildJob")
        common = {
            "series": series,
            "patient_id": patient_in_shuangbai.pk,
            "requested_by_id": personas.county_surgeon.pk,
            "spacing_mm": 0.5,
            "case_path": "/cases/x",
        }
        failed = build_model.objects.create(status="failed", error="missing slice", **common)
        running = build_model.objects.create(status="running", progress=0.4, step="seg", **common)

        migrate(AFTER)
        from clinical_shell.imaging.models import CaseBuildJob

        failed_now = CaseBuildJob.objects.select_related("job").get(pk=failed.pk)
        assert failed_now.job is not None
        assert failed_now.job.status == "failed" and failed_now.job.error == "missing slice"
        assert failed_now.job.kind == "case_build" and failed_now.job.heavy
        assert failed_now.job.payload == {"case_build_id": failed.pk}
        # no worker will ever finish a build the old worker process had: it is failed, saying so
        lost = CaseBuildJob.objects.select_related("job").get(pk=running.pk).job
        assert lost is not None and lost.status == "failed" and lost.progress == 0.4
        assert "retry" in lost.error

        # and back: the builds get their status again, the jobs go
        executor = migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps
        restored = old.get_model("imaging", "CaseBuildJob").objects.get(pk=failed.pk)
        assert restored.status == "failed" and restored.error == "missing slice"
        assert not old.get_model("jobs", "Job").objects.exists()
    finally:
        migrate(executor.loader.graph.leaf_nodes())
