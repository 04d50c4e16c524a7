"""Reads for annotating a simulation case: its versions, the proposal, slice pictures.

The caller has opened the case (``access.access_case``: the patient's door, audited). The
bundle is loaded with its hash verified against the registered one, and kept in process per
content hash (the last ``BUNDLE_CACHE_SIZE``), with the proposal computed once per bundle.
"""

import io
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from clinical_shell.errors import DomainError
from clinical_shell.imaging.annotation_models import CaseAnnotationVersion
from clinical_shell.imaging.models import SimulationCase
from sim_core.case.annotations import Annotations, Tube, annotations_from_dict
from sim_core.case.bundle import BundleError, CaseBundle, load_bundle
from sim_core.case.propose import case_axes, propose_parts

BUNDLE_CACHE_SIZE = 2
# bone window for the slice pictures [HU]: level 400, width 2000
WINDOW_HU = (-600.0, 1400.0)
AXIS_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))  # LPS: + direction, - direction
_bundles: OrderedDict[str, tuple[CaseBundle, dict[str, Any]]] = OrderedDict()
_lock = threading.Lock()


def _unavailable() -> DomainError:
    return DomainError("case_unavailable", _("仿真病例文件无法读取或已被改动"), status=409)


def case_bundle(case: SimulationCase) -> tuple[CaseBundle, dict[str, Any]]:
    """The case's bundle (hash verified) and its proposal (``Proposal.as_dict``)."""
    with _lock:
        held = _bundles.get(case.content_hash)
        if held is not None:
            _bundles.move_to_end(case.content_hash)
            return held
    try:
        bundle = load_bundle(case.path)
    except (BundleError, OSError):
        raise _unavailable() from None
    if bundle.content_hash != case.content_hash:
        raise _unavailable()
    proposal = propose_parts(
        bundle.hu, bundle.bone_id, bundle.spacing_mm, bundle.patient_from_case
    ).as_dict()
    with _lock:
        _bundles[case.content_hash] = (bundle, proposal)
        while len(_bundles) > BUNDLE_CACHE_SIZE:
            _bundles.popitem(last=False)
    return bundle, proposal


def case_meta(case: SimulationCase) -> dict[str, Any]:
    """case.json of the case's bundle (shape, spacing, bones), without loading the grids."""
    try:
        meta = json.loads((Path(case.path) / "case.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _unavailable() from None
    if not isinstance(meta, dict) or meta.get("content_hash") != case.content_hash:
        raise _unavailable()
    return meta


def latest_version(case_id: int) -> CaseAnnotationVersion | None:
    return (
        CaseAnnotationVersion.objects.select_related("created_by__person")
        .filter(case_id=case_id)
        .order_by("-number")
        .first()
    )


def versions_of(case_id: int) -> list[CaseAnnotationVersion]:
    """Every saved version of the case's annotations, newest first."""
    return list(
        CaseAnnotationVersion.objects.select_related("created_by__person")
        .filter(case_id=case_id)
        .order_by("-number")
    )


def view_geometry(bundle: CaseBundle) -> dict[str, Any]:
    """For each case axis: its size, and the patient letters at its + and - ends."""
    rot = bundle.patient_from_case[:3, :3]
    axes = []
    for a in range(3):
        patient_axis = int(np.argmax(np.abs(rot[:, a])))
        plus, minus = AXIS_LETTERS[patient_axis]
        if rot[patient_axis, a] < 0:
            plus, minus = minus, plus
        axes.append({"size": int(bundle.hu.shape[a]), "plus": plus, "minus": minus})
    return {
        "shape": list(bundle.hu.shape),
        "spacing_mm": bundle.spacing_mm,
        "axes": axes,
        "si_axis": case_axes(bundle.patient_from_case).si,
    }


def slice_png(bundle: CaseBundle, axis: int, index: int) -> bytes:
    """Slice ``index`` across case ``axis`` as an 8-bit PNG in a bone window: rows are the
    first remaining case axis, columns the second, both in increasing index (the page maps a
    click back to case millimetres the same way)."""
    from PIL import Image

    plane = np.take(bundle.hu, index, axis=axis).astype(np.float32)
    lo, hi = WINDOW_HU
    grey = np.clip((plane - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(grey).save(out, format="PNG", optimize=False)
    return out.getvalue()


def confirmed_annotations(case_id: int) -> tuple[int, Annotations] | None:
    """The case's latest annotation version: its number and content; None: none saved."""
    version = (
        CaseAnnotationVersion.objects.filter(case_id=case_id)
        .order_by("-number")
        .values("number", "content")
        .first()
    )
    if version is None:
        return None
    return int(version["number"]), annotations_from_dict(version["content"])


def confirmed_tubes(case_id: int) -> tuple[str, tuple[Tube, ...]] | None:
    """The protected tubes of the case's latest annotation version, under a key naming that
    version (``sim_core.plan_checks.cached_planning_model``'s ``tubes``); None: none saved."""
    found = confirmed_annotations(case_id)
    if found is None:
        return None
    number, annotations = found
    return f"case{case_id}-v{number}", annotations.zones
