"""The immutable model of a session: case grids, instrument, scenario, plan, device limits.

``CaseModel`` holds read-only arrays and a ``digest`` over everything the step reads, so a
recording can prove it is replayed against the same model. Build one from a case bundle with
``model_from_bundle`` or from plain grids with ``model_from_grids`` (tests, synthetic blocks).
"""

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core.instruments import Instrument, load_instrument
from sim_core.scenarios import Plan, Scenario, ScenarioError, Sphere, load_scenario, resolve_plan
from sim_core.slots import (
    N_PARAMS,
    P_DAMPING_N_S_PER_MM,
    P_DISPLAY_SCALE,
    P_ENGAGE_GAP_TICKS,
    P_FORCE_LIMIT_N,
    P_GAIN_N,
    P_GRIP_MM,
    P_LATERAL_LIMIT_N,
    P_MAX_FORCE_N,
    P_MAX_TORQUE_N_MM,
    P_PLAN_ENTRY,
    P_PLAN_TARGET,
    P_PLUNGE_MM,
    P_PROXY_K_N_PER_MM,
    P_PROXY_OFF,
    P_PROXY_ON,
    P_PROXY_RELEASE_MM,
    P_ROT_SLACK_MM3,
    P_SPACING_MM,
    P_SPRING_SAT_N,
    P_TEXTURE_N,
    P_THRUST_REF_N,
    P_TORQUE_LIMIT_N_MM,
    P_VOXEL_MM3,
    ZONE_PROTECTED,
    ZONE_TARGET,
)

TISSUE_CORTEX = 1
TISSUE_CANCELLOUS = 2
TISSUE_NAMES = {"cortex": 1, "cancellous": 2, "canal": 3, "nerve": 4, "vessel": 5}


@dataclass(frozen=True)
class DeviceLimits:
    """What the haptic device can render; the display force respects both."""

    max_force_n: float = 3.3  # Touch-class desktop device
    max_stiffness_n_per_mm: float = 1.0
    max_torque_n_mm: float = 0.0  # 0: renders no torque (3-DOF output); the HUD shows it


@dataclass(frozen=True)
class Physics:
    """Force-model constants (Forsslund's overlap force, proxy hysteresis, erosion)."""

    gain_n: float = 2.0  # P in F = P·(V/R³)·n  [N]
    damping_n_s_per_mm: float = 0.002  # D  [N·s/mm]
    proxy_k_n_per_mm: float = 1.0  # spring from proxy to device  [N/mm]
    proxy_on: float = 0.45  # Forsslund: proxy on above 45 % of the sphere volume ...
    proxy_off: float = 0.40  # ... off below 40 % ...
    proxy_release_mm: float = 2.0  # ... with the device within 2 mm
    thrust_ref_n: float = 2.0  # erosion at the nominal rate at this force  [N]
    texture_n: float = 0.05  # cutting vibration amplitude on the display force  [N]
    engage_gap_ticks: float = 150.0  # a withdrawal shorter than 0.15 s is not a redirection
    plunge_mm: float = 2.0  # running on more than 2 mm past a far-cortex exit is a plunge
    # the hand–proxy spring saturates (tanh) at this force; None: at the largest force the
    # device can render, in physical units (max_force_n / display scale). See docs/physics.md
    spring_saturation_n: float | None = None
    grip_mm: float = 30.0  # tip to the hand's grip: rotational stiffness k·grip²
    lateral_limit_n: float = 2.0  # levering: force across the shaft in bone counted above this
    torque_limit_n_mm: float = 40.0  # levering: torque in bone counted above this (≈2.5°)
    rotation_slack_mm3: float = 1.0  # the tool turns while its shaft gains at most this bone


def _readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class CaseModel:
    """Everything a session reads and never writes. Arrays are read-only.

    density0: float32 (n0, n1, n2) bone density at the start, g/cm³, 0 outside bone.
    label: uint8, tissue (low 3 bits, ``sim_core.case.bundle`` values) | ``ZONE_*`` bits.
    params: float64 ``P_*`` row; tool: float64 ``T_*`` row.
    columns: int32 (n0, n1, 2), the broad phase: per voxel column (i, j) the first k and one
    past the last k holding bone or a label (``occupied_columns``); derived from ``density0``
    and ``label``, so the digest, which covers those, covers it too.
    """

    case_name: str
    case_hash: str
    spacing_mm: float
    density0: npt.NDArray[np.float32]
    label: npt.NDArray[np.uint8]
    params: npt.NDArray[np.float64]
    tool: npt.NDArray[np.float64]
    instrument: Instrument
    scenario: Scenario
    plan: Plan
    device: DeviceLimits
    digest: str
    columns: npt.NDArray[np.int32]

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.density0.shape
        return int(s[0]), int(s[1]), int(s[2])

    def tissue(self) -> npt.NDArray[np.uint8]:
        return np.asarray(self.label & 7, dtype=np.uint8)


def occupied_columns(
    density0: npt.NDArray[np.float32], label: npt.NDArray[np.uint8]
) -> npt.NDArray[np.int32]:
    """Per voxel column (i, j): [first k, one past the last k) of the voxels holding bone or a
    label; (0, 0) for a column with none.

    The kernels' broad phase: a voxel outside its column's range is air with no label and
    stays so (bone is only ever removed), so a scan may skip it and still see every voxel it
    would count, in the same order. A long tool mostly in air (a 230 mm guide wire) then
    costs what its part over the bone costs.
    """
    occupied = (label != 0) | (density0 > 0)
    n2 = occupied.shape[2]
    anywhere = occupied.any(axis=2)
    first = np.argmax(occupied, axis=2)
    last = n2 - np.argmax(occupied[:, :, ::-1], axis=2)
    out = np.zeros((*occupied.shape[:2], 2), dtype=np.int32)
    out[..., 0] = np.where(anywhere, first, 0)
    out[..., 1] = np.where(anywhere, last, 0)
    return out


def _sphere_mask(
    shape: tuple[int, ...], spacing_mm: float, sphere: Sphere
) -> npt.NDArray[np.bool_]:
    grids = np.ogrid[: shape[0], : shape[1], : shape[2]]
    d2 = sum((g * spacing_mm - c) ** 2 for g, c in zip(grids, sphere.centre_mm, strict=True))
    return np.asarray(d2 <= sphere.radius_mm**2)


def _params(
    spacing_mm: float, plan: Plan, scenario: Scenario, device: DeviceLimits, physics: Physics
) -> npt.NDArray[np.float64]:
    p = np.zeros(N_PARAMS, dtype=np.float64)
    p[P_SPACING_MM] = spacing_mm
    p[P_VOXEL_MM3] = spacing_mm**3
    p[P_GAIN_N] = physics.gain_n
    p[P_DAMPING_N_S_PER_MM] = physics.damping_n_s_per_mm
    p[P_PROXY_K_N_PER_MM] = physics.proxy_k_n_per_mm
    p[P_PROXY_ON] = physics.proxy_on
    p[P_PROXY_OFF] = physics.proxy_off
    p[P_PROXY_RELEASE_MM] = physics.proxy_release_mm
    p[P_MAX_FORCE_N] = device.max_force_n
    # the hand feels the proxy spring scaled so its stiffness stays within the device's
    p[P_DISPLAY_SCALE] = min(1.0, device.max_stiffness_n_per_mm / physics.proxy_k_n_per_mm)
    p[P_FORCE_LIMIT_N] = scenario.force_limit_n
    p[P_THRUST_REF_N] = physics.thrust_ref_n
    p[P_TEXTURE_N] = physics.texture_n
    p[P_PLAN_ENTRY : P_PLAN_ENTRY + 3] = plan.entry_mm
    p[P_PLAN_TARGET : P_PLAN_TARGET + 3] = plan.target_mm
    p[P_ENGAGE_GAP_TICKS] = physics.engage_gap_ticks
    p[P_PLUNGE_MM] = physics.plunge_mm
    saturation = physics.spring_saturation_n
    if saturation is None:
        saturation = device.max_force_n / p[P_DISPLAY_SCALE]
    p[P_SPRING_SAT_N] = saturation
    p[P_GRIP_MM] = physics.grip_mm
    p[P_MAX_TORQUE_N_MM] = device.max_torque_n_mm
    p[P_LATERAL_LIMIT_N] = physics.lateral_limit_n
    p[P_TORQUE_LIMIT_N_MM] = physics.torque_limit_n_mm
    p[P_ROT_SLACK_MM3] = physics.rotation_slack_mm3
    return p


def _digest(arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(meta, sort_keys=True, ensure_ascii=False).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def model_from_grids(
    *,
    density_g_cm3: npt.NDArray[np.float32],
    tissue: npt.NDArray[np.uint8],
    spacing_mm: float,
    scenario: Scenario,
    instrument: Instrument,
    plan: Plan,
    device: DeviceLimits | None = None,
    physics: Physics | None = None,
    case_name: str = "grids",
    case_hash: str = "",
) -> CaseModel:
    """A model from plain grids (same shape; tissue values as in ``sim_core.case.bundle``).

    Only cortex and cancellous voxels carry bone: other tissue's density is ignored.
    """
    device = device or DeviceLimits()
    physics = physics or Physics()
    if density_g_cm3.shape != tissue.shape or density_g_cm3.ndim != 3:
        raise ValueError(f"grids differ in shape: {density_g_cm3.shape} vs {tissue.shape}")
    if not (math.isfinite(spacing_mm) and spacing_mm > 0):
        raise ValueError(f"spacing_mm must be positive, got {spacing_mm}")
    bone = (tissue == TISSUE_CORTEX) | (tissue == TISSUE_CANCELLOUS)
    density0 = np.where(bone, density_g_cm3, 0).astype(np.float32)
    density0 = np.where(density0 > 0, density0, 0).astype(np.float32)
    label = (np.asarray(tissue, dtype=np.uint8) & 7).astype(np.uint8)
    shape = label.shape
    if plan.target_zone is not None:
        label[_sphere_mask(shape, spacing_mm, plan.target_zone)] |= ZONE_TARGET
    if plan.protected_zone is not None:
        label[_sphere_mask(shape, spacing_mm, plan.protected_zone)] |= ZONE_PROTECTED
    params = _params(spacing_mm, plan, scenario, device, physics)
    tool = instrument.tool_row(spacing_mm)
    meta = {
        "case_hash": case_hash,
        "scenario": scenario.name,
        "instrument": instrument.name,
        "scoring": scenario.scoring,
        "thresholds": [[t.metric, t.bound, t.value] for t in scenario.thresholds],
        "screw_diameter_mm": scenario.screw_diameter_mm,
        "time_limit_s": scenario.time_limit_s,
        "seed": scenario.seed,
        "plan": [plan.entry_mm, plan.target_mm],
        "zones": [
            None if z is None else [z.centre_mm, z.radius_mm]
            for z in (plan.target_zone, plan.protected_zone)
        ],
    }
    if plan.blade_normal is not None:
        # a cut's plane: only where there is one, so every other model's digest is as it was
        meta["blade_normal"] = list(plan.blade_normal)
    digest = _digest({"density0": density0, "label": label, "params": params, "tool": tool}, meta)
    return CaseModel(
        case_name=case_name,
        case_hash=case_hash,
        spacing_mm=float(spacing_mm),
        density0=_readonly(density0),
        label=_readonly(label),
        params=_readonly(params),
        tool=_readonly(tool),
        instrument=instrument,
        scenario=scenario,
        plan=plan,
        device=device,
        digest=digest,
        columns=_readonly(occupied_columns(density0, label)),
    )


def check_case_has(scenario: Scenario, tissue: npt.NDArray[np.uint8], case_name: str) -> None:
    """Raise ``ScenarioError`` when the case lacks a tissue the scenario needs."""
    present = set(np.unique(tissue).tolist())
    for name in scenario.requires_tissues:
        if TISSUE_NAMES[name] not in present:
            raise ScenarioError(
                f"{case_name}: 病例没有场景 {scenario.name} 需要的 {name} 区域 / the case has "
                f"no {name} zone, which scenario {scenario.name} needs"
            )


def check_zone_in_bone(model: CaseModel) -> None:
    """A target zone with no bone in it cannot be burred: say so rather than score 0 %."""
    if model.plan.target_zone is None:
        return
    in_target = (model.label & ZONE_TARGET) > 0
    if not np.any(in_target & (model.density0 > 0)):
        raise ScenarioError(
            f"{model.case_name}: 场景 {model.scenario.name} 的目标区内没有骨 / the target zone of "
            f"scenario {model.scenario.name} holds no bone on this case"
        )


def model_from_bundle(
    bundle: Any,
    scenario: Scenario | str,
    *,
    instrument: Instrument | str | None = None,
    device: DeviceLimits | None = None,
    physics: Physics | None = None,
) -> CaseModel:
    """A model from a ``sim_core.case.bundle.CaseBundle`` and a scenario (object or name)."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    if instrument is None:
        instrument = scenario.instrument
    if isinstance(instrument, str):
        instrument = load_instrument(instrument)
    name = str(getattr(bundle, "path", "case"))
    if scenario.rehearsal_only:
        # its points are a plan's (sim_core.rehearsal): no case has them
        raise ScenarioError(
            f"场景 {scenario.name} 只用于演练手术规划 / scenario {scenario.name} only rehearses "
            "a surgical plan (sim_core.rehearsal.rehearsal_model)"
        )
    check_case_has(scenario, bundle.tissue, name)
    marks = {m["name"]: m["lps_mm"] for m in bundle.meta.get("landmarks", [])}
    plan = resolve_plan(scenario, marks, bundle.case_from_patient_mm, case_name=name)
    model = model_from_grids(
        density_g_cm3=bundle.density_g_cm3,
        tissue=bundle.tissue,
        spacing_mm=bundle.spacing_mm,
        scenario=scenario,
        instrument=instrument,
        plan=plan,
        device=device,
        physics=physics,
        case_name=name,
        case_hash=bundle.content_hash,
    )
    check_zone_in_bone(model)
    return model
