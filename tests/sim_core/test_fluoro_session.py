"""Fluoroscopy shots are part of a session: counted in the score, kept in the recording, and
the same images come back from a replay."""

import json
from pathlib import Path

import numpy as np
import pytest
from osteon_cli import CliRunner
from synthetic_cases import phantom_case

from sim_core.case.bundle import load_bundle
from sim_core.fluoro import SHOT_EXPOSURE_S, FluoroError, ShotRecord, shots_from_json
from sim_core.model import model_from_bundle
from sim_core.replay import RecordingError, play, read_recording, write_recording
from sim_core.trajectories import scripted_rows


@pytest.fixture(scope="module")
def lumbar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    return phantom_case("lumbar", root)


def test_shots_are_counted_recorded_and_come_back_from_a_replay(
    lumbar: Path, tmp_path: Path, osteon_cli: CliRunner
) -> None:
    rec, live_dir, replay_dir = tmp_path / "s.osrec", tmp_path / "live", tmp_path / "replay"
    ran = osteon_cli(
        "sim", "run", str(lumbar), "--scenario", "pedicle_pilot_hole",
        "--shot", "16000:lateral", "--shot", "3000:ap", "--shot", "16000:oblique:-30",
        "--record", str(rec), "--fluoro-dir", str(live_dir), "--json",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert out["metrics"]["fluoro_shots"]["value"] == 3.0
    assert out["metrics"]["fluoro_time_s"]["value"] == pytest.approx(3 * SHOT_EXPOSURE_S)
    assert [s["tick"] for s in out["fluoro_shots"]] == [3000, 16000, 16000]
    assert len(out["fluoro_png"]) == 3
    # the recording keeps them; the replay reproduces the score with them, and the images
    assert [s.view for s in read_recording(rec).shots] == ["ap", "lateral", "oblique:-30"]
    replayed = osteon_cli("sim", "replay", str(rec), "--fluoro-dir", str(replay_dir), "--json")
    assert replayed.exit_code == 0, replayed.stderr
    again = json.loads(replayed.stdout)
    assert again["reproduced"] is True
    assert again["result"]["metrics"]["fluoro_shots"]["value"] == 3.0
    for live_png, replay_png in zip(out["fluoro_png"], again["fluoro_png"], strict=True):
        assert Path(live_png).name == Path(replay_png).name
        assert Path(live_png).read_bytes() == Path(replay_png).read_bytes()
    # the drill moved between the AP shot at 3 s and the lateral one at 16 s
    first, second = (Path(p).read_bytes() for p in out["fluoro_png"][:2])
    assert first != second


def test_a_recording_without_shots_reads_as_before(lumbar: Path, tmp_path: Path) -> None:
    model = model_from_bundle(load_bundle(lumbar), "burr_lesion")
    rows = scripted_rows(model, "expert")[:2000]
    _, result = play(model, rows)
    rec = tmp_path / "old.osrec"
    write_recording(rec, model=model, rows=rows, result=result, case_path=lumbar, device_name="x")
    loaded = read_recording(rec)
    assert "fluoro_shots" not in loaded.meta
    assert loaded.shots == ()
    assert result.sheet.value("fluoro_shots") == 0.0
    # shots only read the state: the same inputs with shots end in the same state
    _, with_shots = play(model, rows, (ShotRecord(500, "ap"),))
    assert with_shots.state_hash == result.state_hash
    assert with_shots.sheet.value("fluoro_time_s") == pytest.approx(SHOT_EXPOSURE_S)


def test_damaged_shot_lists_are_refused(lumbar: Path, tmp_path: Path) -> None:
    with pytest.raises(FluoroError):
        shots_from_json([{"tick": -1, "view": "ap"}])
    with pytest.raises(FluoroError):
        shots_from_json([{"tick": 10, "view": "axial"}])
    with pytest.raises(FluoroError):
        ShotRecord.parse("soon:ap")
    model = model_from_bundle(load_bundle(lumbar), "burr_lesion")
    rows = scripted_rows(model, "expert")[:200]
    _, result = play(model, rows)
    rec = tmp_path / "bad.osrec"
    write_recording(
        rec, model=model, rows=rows, result=result, case_path=lumbar, device_name="x",
        shots=(ShotRecord(100, "ap"),),
    )  # fmt: skip
    with np.load(rec) as z:
        meta = json.loads(z["meta"].tobytes())
        inputs = z["inputs"]
    meta["fluoro_shots"] = [{"tick": "x", "view": "ap"}]
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with rec.open("wb") as f:
        np.savez(f, meta=blob, inputs=inputs)
    with pytest.raises(RecordingError):
        read_recording(rec)
