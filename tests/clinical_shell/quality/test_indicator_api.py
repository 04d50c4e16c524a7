"""The quality API over HTTP: figures, funnel, cases filtered to the user, thresholds, warnings,
facts; refusals are problem details."""

import json
from datetime import timedelta
from typing import Any

from django.test import Client
from quality_cohorts import at, encounter
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.quality import services
from clinical_shell.quality.models import ClinicalFact, IndicatorDefinition, QualityWarning
from clinical_shell.records.models import CareRelationship

API = "/api/v1/quality"


def _send(client: Client, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    return getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")


def test_figures_cases_thresholds_and_warnings(shell_network: Network, personas: Personas) -> None:
    n, t = shell_network, at(2026, 1, 5)
    for site in (n.center, n.center, n.shuangbai):
        encounter(site, t, facts={"clean_incision": t, "ssi_30d": t + timedelta(days=3)})
    client = Client()
    client.force_login(personas.quality_manager)
    changed = _send(
        client,
        "patch",
        f"{API}/indicators/ssi-clean-30d/thresholds",
        {"reason": "试点", "min_denominator": 3},
    )
    assert changed.status_code == 200 and changed.json()["min_denominator"] == 3
    services.recompute_month(t.date())
    figures = {f["code"]: f for f in client.get(f"{API}/results?month=2026-01-01").json()}
    assert (figures["ssi-clean-30d"]["numerator"], figures["ssi-clean-30d"]["denominator"]) == (
        3,
        3,
    )
    assert figures["ssi-clean-30d"]["status"] == "alarm"
    assert figures["training-pass-rate"]["status"] == "no_data"
    funnel = client.get(f"{API}/funnel/ssi-clean-30d?month=2026-01-01").json()
    assert funnel["p"] == 1.0 and len(funnel["points"]) == 2
    # the county surgeon sees only 双柏's case behind the prefecture figure; the office all three
    assert len(client.get(f"{API}/cases/ssi-clean-30d?month=2026-01-01").json()) == 3
    surgeon = Client()
    surgeon.force_login(personas.county_surgeon)
    seen = surgeon.get(f"{API}/cases/ssi-clean-30d?month=2026-01-01").json()
    assert [c["institution_id"] for c in seen] == [n.shuangbai.pk]
    assert AuditEvent.objects.filter(action="quality.cases.view").count() == 2
    refused = _send(
        surgeon, "patch", f"{API}/indicators/ssi-clean-30d/thresholds", {"reason": "x", "alarm": 1}
    )
    assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"
    open_ = client.get(f"{API}/warnings").json()
    alarm = next(w for w in open_ if w["cause"] == "ssi-clean-30d:prefecture:all")
    empty = _send(client, "post", f"{API}/warnings/{alarm['id']}/acknowledge", {"action_note": ""})
    assert empty.status_code == 422
    done = _send(
        client, "post", f"{API}/warnings/{alarm['id']}/acknowledge", {"action_note": "复核感染病例"}
    )
    assert done.json()["status"] == "acknowledged"
    assert _send(client, "post", f"{API}/warnings/{alarm['id']}/close").json()["status"] == "closed"
    assert _send(surgeon, "post", f"{API}/warnings/{alarm['id']}/close").status_code == 404
    assert QualityWarning.objects.get(pk=alarm["id"]).closed_by == personas.quality_manager
    assert IndicatorDefinition.objects.get(code="ssi-clean-30d").threshold_changes.count() == 1


def test_facts_need_write_access(shell_network: Network, personas: Personas) -> None:
    n, t = shell_network, at(2026, 1, 5)
    seen = encounter(n.shuangbai, t, icd10="S72.0")
    CareRelationship.objects.create(patient=seen.patient, institution=n.shuangbai, kind="encounter")
    surgeon = Client()
    surgeon.force_login(personas.county_surgeon)
    body = {"encounter_id": seen.pk, "kind": "arrival", "occurred_at": t.isoformat()}
    assert _send(surgeon, "post", f"{API}/facts", body).status_code == 201
    assert _send(surgeon, "post", f"{API}/facts", {**body, "kind": "nonsense"}).status_code == 422
    outsider = Client()
    outsider.force_login(personas.outsider)
    assert _send(outsider, "post", f"{API}/facts", body).status_code in (403, 404)
    assert ClinicalFact.objects.filter(encounter=seen).count() == 1
