"""Sessions as recordings: inputs per tick plus everything needed to prove a replay is exact.

A recording is one ``.npz`` file (a zip: each member carries a CRC, so damage is detected),
written atomically (temporary sibling, then rename), holding:

- ``inputs``: the TickInput records (``sim_core.slots.TICK_INPUT_DTYPE``), case frame;
- ``meta``: UTF-8 JSON as uint8 — format and engine version, package versions and CPU arch,
  the case (path, content hash), scenario, instrument, device limits, model digest, initial
  state hash, tick count, sha256 of the inputs, and the result (metrics, pass/fail, score,
  final state hash); ``fluoro_shots`` (optional, absent in recordings made before virtual
  fluoroscopy): the C-arm shots taken, ``[{"tick", "view"}]`` (``sim_core.fluoro``). A shot
  only reads the state, so it does not change the replay; it counts in the score.

``replay_recording`` rebuilds the model from the case and names, checks every hash, re-runs
the inputs headless and compares metrics and final state hash with the recorded ones.
"""

import hashlib
import json
import platform
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from sim_core.atomic_write import atomic_write
from sim_core.case.bundle import BundleError, load_bundle
from sim_core.fluoro import FluoroError, ShotRecord, fluoro_metrics, shots_from_json
from sim_core.model import CaseModel, DeviceLimits, model_from_bundle
from sim_core.scoring import ScoreSheet, score
from sim_core.slots import DT_S, TICK_INPUT_DTYPE
from sim_core.state import SimState, make_state, state_hash
from sim_core.step import as_records, input_rows, run

# bump whenever the step's arithmetic, a slot layout or a default constant changes
ENGINE_VERSION = "osteon-engine-3"
FORMAT = "osteon-recording"
FORMAT_VERSION = 1


# optional fields: a recording without them reads as before they existed
OPTIONAL_META_FIELDS = frozenset({"fluoro_shots"})
META_FIELDS = frozenset(
    {
        "format",
        "format_version",
        "engine_version",
        "environment",
        "created_utc",
        "case",
        "scenario",
        "instrument",
        "device",
        "model_digest",
        "initial_state_hash",
        "ticks",
        "inputs_sha256",
        "result",
    }
)


class RecordingError(Exception):
    """A recording that is missing, damaged, of another engine, or does not match its case."""


@dataclass(frozen=True)
class SessionResult:
    sheet: ScoreSheet
    state_hash: str
    ticks: int
    wall_s: float

    @property
    def sim_s(self) -> float:
        return self.ticks * DT_S

    @property
    def speedup(self) -> float:
        """Simulated time over wall time (how much faster than real time)."""
        return self.sim_s / self.wall_s if self.wall_s > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.sheet.as_dict(),
            "state_hash": self.state_hash,
            "ticks": self.ticks,
            "sim_s": self.sim_s,
        }


def play(
    model: CaseModel, rows: npt.NDArray[Any], shots: Sequence[ShotRecord] = ()
) -> tuple[SimState, SessionResult]:
    """Run a whole session headless from a fresh state; return the state and its result.

    ``shots``: the fluoroscopy shots the session took (counted in the score sheet)."""
    state = make_state(model)
    rows = input_rows(rows)
    # load the compiled kernels first (zero ticks), so the timing is the simulation's own
    run(model, state, rows[:0])
    start = time.perf_counter()
    run(model, state, rows)
    wall = time.perf_counter() - start
    sheet = score(model, state, extra=fluoro_metrics(list(shots)))
    result = SessionResult(sheet, state_hash(state), int(rows.shape[0]), wall)
    return state, result


def environment() -> dict[str, Any]:
    """Versions and machine facts that bit-exact replay depends on."""
    return {
        "engine": ENGINE_VERSION,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "arch": platform.machine(),
        "system": platform.system(),
        "byteorder": sys.byteorder,
    }


def _inputs_digest(records: npt.NDArray[Any]) -> str:
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(records).tobytes()).hexdigest()


def write_recording(
    path: Path,
    *,
    model: CaseModel,
    rows: npt.NDArray[Any],
    result: SessionResult,
    case_path: Path,
    device_name: str,
    shots: Sequence[ShotRecord] = (),
) -> None:
    """Write a session recording atomically; an existing file at ``path`` is replaced."""
    path = Path(path)
    records = as_records(input_rows(rows))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "engine_version": ENGINE_VERSION,
        "environment": environment(),
        "created_utc": datetime.now(UTC).isoformat(),
        "case": {"path": str(Path(case_path).resolve()), "content_hash": model.case_hash},
        "scenario": model.scenario.name,
        "instrument": model.instrument.name,
        "device": {
            "name": device_name,
            "max_force_n": model.device.max_force_n,
            "max_stiffness_n_per_mm": model.device.max_stiffness_n_per_mm,
            "max_torque_n_mm": model.device.max_torque_n_mm,
        },
        "model_digest": model.digest,
        "initial_state_hash": state_hash(make_state(model)),
        "ticks": int(records.shape[0]),
        "inputs_sha256": _inputs_digest(records),
        "result": result.as_dict(),
    }
    if shots:
        meta["fluoro_shots"] = [shot.as_json() for shot in shots]
    blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, meta=blob, inputs=records)


@dataclass(frozen=True)
class Recording:
    meta: dict[str, Any]
    inputs: npt.NDArray[Any]

    @property
    def shots(self) -> tuple[ShotRecord, ...]:
        """The fluoroscopy shots the session took (none in older recordings)."""
        return shots_from_json(self.meta.get("fluoro_shots", []))


def _bad(path: Path, zh: str, en: str) -> RecordingError:
    return RecordingError(f"{path}: {zh} / {en}")


def read_recording(path: Path) -> Recording:
    """Read and check a recording (format, engine version, integrity); no model needed."""
    path = Path(path)
    if not path.is_file():
        raise _bad(path, "记录文件不存在", "recording not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            if set(z.files) != {"meta", "inputs"}:
                raise _bad(path, "不是 Osteon 记录", "not an Osteon recording")
            blob = z["meta"]
            inputs = z["inputs"]
        meta = json.loads(blob.tobytes().decode("utf-8"))
    except RecordingError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise _bad(
            path, "记录已损坏或被截断", f"recording is damaged or truncated ({exc})"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(path, "不是 Osteon 记录", "not an Osteon recording")
    if meta.get("format_version") != FORMAT_VERSION:
        raise _bad(
            path,
            "记录格式版本不同",
            f"recording format {meta.get('format_version')!r}, this engine reads {FORMAT_VERSION}",
        )
    if meta.get("engine_version") != ENGINE_VERSION:
        raise _bad(
            path,
            "记录来自另一个引擎版本，无法逐位重放",
            f"recorded with engine {meta.get('engine_version')!r}; this is {ENGINE_VERSION}, "
            "which cannot replay it bit for bit",
        )
    unknown = sorted(set(meta) - META_FIELDS - OPTIONAL_META_FIELDS)
    missing = sorted(META_FIELDS - set(meta))
    if unknown or missing:
        raise _bad(
            path,
            "记录含有未知字段或缺少字段",
            f"recording has unknown field(s) {unknown} and lacks {missing}",
        )
    if inputs.dtype != TICK_INPUT_DTYPE or inputs.ndim != 1:
        raise _bad(
            path, "输入记录格式不对", f"inputs have dtype {inputs.dtype}, shape {inputs.shape}"
        )
    if inputs.shape[0] != meta.get("ticks") or _inputs_digest(inputs) != meta.get("inputs_sha256"):
        raise _bad(path, "输入与记录的校验值不符", "inputs do not match their recorded hash")
    try:
        shots_from_json(meta.get("fluoro_shots", []), str(path))
    except FluoroError as exc:
        raise RecordingError(str(exc)) from exc
    return Recording(meta, inputs)


def model_for_recording(rec: Recording, *, case_path: Path | None = None) -> CaseModel:
    """Rebuild the recorded model; the case may have moved (``case_path``) but not changed."""
    case = Path(case_path or rec.meta["case"]["path"])
    try:
        bundle = load_bundle(case)
    except BundleError as exc:
        raise RecordingError(
            f"{case}: 无法读取记录所用病例 / cannot load the recorded case ({exc})"
        ) from exc
    if bundle.content_hash != rec.meta["case"]["content_hash"]:
        raise RecordingError(
            f"{case}: 病例与记录时不同 / this case differs from the one recorded "
            f"({bundle.content_hash} vs {rec.meta['case']['content_hash']})"
        )
    device = rec.meta["device"]
    model = model_from_bundle(
        bundle,
        rec.meta["scenario"],
        instrument=rec.meta["instrument"],
        device=DeviceLimits(
            device["max_force_n"],
            device["max_stiffness_n_per_mm"],
            # engine 2: the torque limit enters the model (and its digest)
            device.get("max_torque_n_mm", 0.0),
        ),
    )
    if model.digest != rec.meta["model_digest"]:
        raise RecordingError(
            f"{case}: 场景、器械或引擎参数与记录时不同 / the scenario, instrument or engine "
            "parameters differ from the recording (model digest mismatch)"
        )
    if state_hash(make_state(model)) != rec.meta["initial_state_hash"]:
        raise RecordingError(f"{case}: 初始状态不同 / initial state hash mismatch")
    return model


def replay_recording(path: Path, *, case_path: Path | None = None) -> dict[str, Any]:
    """Re-run a recording; report whether metrics and final state hash match bit for bit."""
    rec = read_recording(path)
    model = model_for_recording(rec, case_path=case_path)
    _, result = play(model, rec.inputs, rec.shots)
    replayed = json.loads(json.dumps(result.as_dict(), sort_keys=True))
    recorded = rec.meta["result"]
    env_now = environment()
    return {
        "recording": str(path),
        "reproduced": replayed == recorded,
        "state_hash": result.state_hash,
        "recorded_state_hash": recorded.get("state_hash"),
        "metrics_match": replayed.get("metrics") == recorded.get("metrics"),
        "result": replayed,
        "ticks": result.ticks,
        "sim_s": result.sim_s,
        "wall_s": result.wall_s,
        "speedup": result.speedup,
        "environment_matches": {
            k: env_now[k] == rec.meta["environment"].get(k) for k in sorted(env_now)
        },
    }
