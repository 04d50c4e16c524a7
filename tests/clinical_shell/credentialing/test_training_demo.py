"""The demo's training and credentialing data: a cohort with learning curves, an application
waiting for the committee, and every generated score marked as generated."""

from pathlib import Path

from pytest_django.fixtures import Settings
from shell_personas import make_persona

from clinical_shell.credentialing.demo import DEMO_SIGNATURE, load_training_demo
from clinical_shell.credentialing.eligibility import check_eligibility
from clinical_shell.credentialing.models import Application, Committee, Privilege
from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.stations import case_archives
from clinical_shell.stations.models import SessionResult
from clinical_shell.training import selectors


def test_the_demo_has_a_cohort_a_pending_application_and_honest_provenance(
    db: None, tmp_path: Path, settings: Settings
) -> None:
    # a stand-in for the built demo case (case.json only): the demo packs it as sessions would
    settings.OSTEON_CASE_ARCHIVE_ROOT = tmp_path / "archives"
    bundle = tmp_path / "demo-lumbar"
    bundle.mkdir()
    (bundle / "case.json").write_text('{"content_hash": "sha256:demo-stand-in"}')
    content_hash = case_archives.archive_for_bundle(bundle).content_hash
    institutions = network.build_chuxiong_network(actor=None)
    center = institutions["CX-CENTER"]
    for i in range(8):
        make_persona(f"surgeon{i:03d}", f"外科{i}", "attending", (center, Role.SURGEON))
    residents = [
        make_persona(f"resident{i:03d}", f"住院{i}", "resident", (center, Role.RESIDENT))
        for i in range(6)
    ]
    for i in range(5):
        make_persona(f"committee{i:03d}", f"委员{i}", "chief", (center, Role.COMMITTEE_MEMBER))

    demo = load_training_demo(case_content_hash=content_hash)
    assert demo.created and demo.application_id is not None
    assert not load_training_demo(case_content_hash="sha256:x").created

    application = Application.objects.get(pk=demo.application_id)
    assert application.status == Application.Status.UNDER_REVIEW
    assert check_eligibility(application.applicant, application.requirement, center).eligible
    assert application.votes.count() == 1
    assert Committee.objects.get(institution=center).quorum == 3
    assert Privilege.objects.filter(status=Privilege.Status.ACTIVE).count() == 6

    statuses = {p.status for r in residents for p in selectors.progress_of(r)}
    assert "passed" in statuses and len(statuses) >= 2
    curve = selectors.progress_of(residents[0])[0].curve
    assert len(curve) >= 3 and curve[-1]["score"] > curve[0]["score"]
    rows = SessionResult.objects.all()
    assert rows.filter(verification=SessionResult.Verification.REJECTED).exists()
    assert set(rows.values_list("signature", flat=True)) == {DEMO_SIGNATURE}
    assert all("demo" in r.replay for r in rows)
