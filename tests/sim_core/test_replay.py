"""Recordings: a session replays bit for bit; damaged, truncated, foreign or tampered
recordings are refused with a clear error; a failed write leaves nothing behind."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synthetic_cases import phantom_case

import sim_core.replay as replay
from sim_core.case.bundle import load_bundle
from sim_core.model import model_from_bundle
from sim_core.replay import (
    RecordingError,
    play,
    read_recording,
    replay_recording,
    write_recording,
)
from sim_core.trajectories import scripted_rows


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    case = phantom_case("lumbar", root)
    model = model_from_bundle(load_bundle(case), "pedicle_pilot_hole")
    rows = scripted_rows(model, "novice")
    _state, result = play(model, rows)
    path = tmp_path_factory.mktemp("rec") / "session.npz"
    write_recording(path, model=model, rows=rows, result=result, case_path=case, device_name="t")
    return {"case": case, "path": path, "result": result, "rows": rows}


def rewrite(
    src: Path, dst: Path, *, meta: dict[str, Any] | None = None, inputs: Any = None
) -> Path:
    with np.load(src) as z:
        blob, records = z["meta"], z["inputs"]
    if meta is not None:
        blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(dst, meta=blob, inputs=records if inputs is None else inputs)
    return dst


def test_a_replay_reproduces_metrics_and_state_hash_bit_for_bit(session: dict[str, Any]) -> None:
    out = replay_recording(session["path"])
    assert out["reproduced"] and out["metrics_match"]
    assert out["state_hash"] == out["recorded_state_hash"] == session["result"].state_hash
    assert (
        out["result"]["metrics"] == json.loads(json.dumps(session["result"].as_dict()))["metrics"]
    )
    assert out["ticks"] == len(session["rows"])
    assert out["speedup"] > 1.0  # headless, faster than real time (the bench measures how much)
    assert all(out["environment_matches"].values())


def test_the_recording_holds_what_the_committee_needs(session: dict[str, Any]) -> None:
    meta = read_recording(session["path"]).meta
    assert meta["engine_version"] == replay.ENGINE_VERSION
    assert {"numpy", "numba", "arch", "python"} <= set(meta["environment"])
    assert meta["case"]["content_hash"].startswith("sha256:")
    assert meta["result"]["state_hash"] == session["result"].state_hash
    assert meta["result"]["passed"] is False and "gr_grade" in meta["result"]


@pytest.mark.parametrize("where", [0.3, 0.6, 0.95])
def test_a_damaged_recording_is_refused(
    session: dict[str, Any], tmp_path: Path, where: float
) -> None:
    data = bytearray(session["path"].read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=r"damaged|not an Osteon|do not match"):
        replay_recording(bad)


def test_a_truncated_recording_is_refused(session: dict[str, Any], tmp_path: Path) -> None:
    data = session["path"].read_bytes()
    bad = tmp_path / "cut.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match="damaged or truncated"):
        replay_recording(bad)


def test_a_recording_from_another_engine_version_is_refused(
    session: dict[str, Any], tmp_path: Path
) -> None:
    meta = read_recording(session["path"]).meta
    meta["engine_version"] = "osteon-engine-0"
    bad = rewrite(session["path"], tmp_path / "old.npz", meta=meta)
    with pytest.raises(RecordingError, match="recorded with engine 'osteon-engine-0'"):
        replay_recording(bad)


def test_a_recording_with_unknown_fields_is_refused(
    session: dict[str, Any], tmp_path: Path
) -> None:
    meta = read_recording(session["path"]).meta
    meta["bonus_points"] = 10
    bad = rewrite(session["path"], tmp_path / "extra.npz", meta=meta)
    with pytest.raises(RecordingError, match=r"unknown field\(s\) \['bonus_points'\]"):
        replay_recording(bad)


def test_edited_inputs_are_refused(session: dict[str, Any], tmp_path: Path) -> None:
    records = read_recording(session["path"]).inputs.copy()
    records["x_mm"][100:200] += 1.0
    bad = rewrite(session["path"], tmp_path / "edited.npz", inputs=records)
    with pytest.raises(RecordingError, match="do not match their recorded hash"):
        replay_recording(bad)


def test_a_different_scenario_setup_is_refused(session: dict[str, Any], tmp_path: Path) -> None:
    meta = read_recording(session["path"]).meta
    meta["instrument"] = "drill_2.5mm"
    bad = rewrite(session["path"], tmp_path / "other-tool.npz", meta=meta)
    with pytest.raises(RecordingError, match="model digest mismatch"):
        replay_recording(bad)


def test_a_failed_write_leaves_nothing_behind(
    session: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = model_from_bundle(load_bundle(session["case"]), "pedicle_pilot_hole")

    def broken_savez(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(replay.np, "savez", broken_savez)
    target = tmp_path / "out" / "session.npz"
    with pytest.raises(OSError, match="disk full"):
        write_recording(
            target,
            model=model,
            rows=session["rows"][:10],
            result=session["result"],
            case_path=session["case"],
            device_name="t",
        )
    assert list(target.parent.iterdir()) == []
