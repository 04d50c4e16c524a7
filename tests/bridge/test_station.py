"""The station: enrolment from the command line, a scripted session started from the shell
ending in a signed result the shell stores once and that replays to the same state hash, case
transfer by hash (resumed after an interruption, refused on a wrong hash)."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_helpers import Bridge, enrol_station, start_endpoint, stop_endpoint

from bridge.case_archive import pack_case
from bridge.messages import StartSession
from bridge.station import StationError, StationRunner, enroll, load_identity

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small lumbar phantom case, built through the real CT -> case path (about 10 s)."""
    from sim_core.case.build import build_case
    from sim_core.ct.phantom import make_phantom, write_phantom

    root = tmp_path_factory.mktemp("phantom")
    write_phantom(make_phantom("lumbar", seed=1, slices=80, matrix=128), root / "ct")
    build_case(root / "ct", root / "case")
    return root / "case"


def osteon(*args: str) -> list[str]:
    return [sys.executable, "-m", "osteon", *args]


def test_enrol_from_the_command_line(bridge: Bridge, tmp_path: Path) -> None:
    bridge.side.add_code("CLI-CODE", room="模拟训练室 1")
    station_dir = tmp_path / "st"
    done = subprocess.run(
        osteon(
            "station",
            "enroll",
            "--shell",
            bridge.url,
            "--code",
            "CLI-CODE",
            "--shell-key",
            bridge.keys.public,
            "--dir",
            str(station_dir),
            "--json",
        ),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    identity = load_identity(station_dir)
    assert bridge.side.station_for_key(identity.curve.public) is not None
    # the code was used once: a second enrolment with it is refused
    with pytest.raises(StationError, match="enrolment_refused"):
        enroll(
            tmp_path / "st2", shell_url=bridge.url, code="CLI-CODE", shell_key=bridge.keys.public
        )
    assert not (tmp_path / "st2" / "station.json").exists()


def test_a_session_started_from_the_shell_ends_in_a_stored_result_that_replays(
    bridge: Bridge, tmp_path: Path, phantom: Path
) -> None:
    from sim_core.replay import replay_recording

    identity = enrol_station(bridge, tmp_path / "station")
    case_hash, archive = pack_case(phantom, bridge.case_store)
    bridge.side.add_command(
        identity.config.station_id,
        StartSession(
            session_id="sess-1",
            case_hash=case_hash,
            case_bytes=archive.stat().st_size,
            scenario="pedicle_pilot_hole",
            username="surgeon",
            device="scripted:expert",
        ),
    )
    station = subprocess.run(
        osteon(
            "station",
            "run",
            "--dir",
            str(tmp_path / "station"),
            "--no-realtime",
            "--username",
            "surgeon",
            "--password",
            "pw-surgeon",
            "--max-sessions",
            "1",
        ),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert station.returncode == 0, station.stderr
    # "saved" is printed before the ack, which follows
    assert station.stderr.index("已保存 / saved") < station.stderr.index("已确认 / acknowledged")
    [message_id] = bridge.side.accepted_ids()
    row = bridge.side.result_row(message_id)
    assert row is not None and row["username"] == "surgeon"
    assert bridge.side.effect_counts() == {message_id: 1}
    assert bridge.side.command_state("sess-1") == (1, "")
    assert bridge.endpoint.stats.telemetry > 0
    # the shell's replay of the received recording reproduces the signed final-state hash
    rec = tmp_path / "received.npz"
    rec.write_bytes(row["recording"])  # type: ignore[arg-type]
    replayed = replay_recording(rec, case_path=phantom)
    assert replayed["reproduced"] is True
    assert replayed["state_hash"] == row["final_state_hash"]
    # the signed score is the replay's, and the scripted expert passes
    assert replayed["result"]["score"] == row["score"] and replayed["result"]["passed"] is True
    # the case is cached, verified: a second session would not fetch it again
    assert (tmp_path / "station" / "cases" / "cases" / case_hash.removeprefix("sha256:")).is_dir()


def fake_case(root: Path, mib: int) -> Path:
    case = root / "fake-case"
    case.mkdir()
    (case / "case.json").write_text('{"not": "a real case"}')
    (case / "volume.npz").write_bytes(os.urandom(mib * 2**20))
    return case


@pytest.fixture
def runner_thread() -> Iterator[list[StationRunner]]:
    runners: list[StationRunner] = []
    yield runners
    for r in runners:
        r.stop()


def start_runner(station_dir: Path, runners: list[StationRunner], **kw: object) -> threading.Thread:
    runner = StationRunner(station_dir, realtime=False, echo=lambda s: None, **kw)  # type: ignore[arg-type]
    runners.append(runner)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    return thread


def test_a_case_transfer_resumes_after_the_shell_goes_away(
    tmp_path: Path, runner_thread: list[StationRunner]
) -> None:
    first = start_endpoint(tmp_path)
    identity = enrol_station(first, tmp_path / "station")
    case_hash, archive = pack_case(fake_case(tmp_path, 24), first.case_store)
    total = archive.stat().st_size
    first.side.add_command(
        identity.config.station_id,
        StartSession(
            session_id="s-resume",
            case_hash=case_hash,
            case_bytes=total,
            scenario="x",
            username="surgeon",
        ),
    )
    start_runner(tmp_path / "station", runner_thread, chunk_bytes=16 * 1024)
    partial = tmp_path / "station" / "cases" / "partial" / f"{case_hash[7:]}.part"
    deadline = time.monotonic() + 20
    while not (partial.exists() and partial.stat().st_size > 2 * 2**20):
        assert time.monotonic() < deadline, "the transfer did not start"
        time.sleep(0.005)
    stop_endpoint(first)
    at_stop = partial.stat().st_size
    assert at_stop < total, "the transfer finished before the interruption"
    second = start_endpoint(tmp_path, keys=first.keys, port=first.port)
    cached = tmp_path / "station" / "cases" / "cases" / case_hash[7:]
    deadline = time.monotonic() + 30
    while not cached.is_dir():
        assert time.monotonic() < deadline, "the transfer did not finish after the restart"
        time.sleep(0.05)
    # the second shell sent only what was missing, and the archive unpacked intact
    assert second.endpoint.stats.case_bytes_served <= total - at_stop + 16 * 1024
    assert (cached / "volume.npz").read_bytes() == (
        tmp_path / "fake-case" / "volume.npz"
    ).read_bytes()
    runner_thread[0].stop()
    stop_endpoint(second)


def test_a_case_whose_bytes_do_not_match_its_hash_is_refused(
    bridge: Bridge, tmp_path: Path, runner_thread: list[StationRunner]
) -> None:
    identity = enrol_station(bridge, tmp_path / "station")
    case_hash, archive = pack_case(fake_case(tmp_path, 1), bridge.case_store)
    # the shell's copy is damaged: same name (hash), other bytes
    archive.write_bytes(archive.read_bytes()[:-1] + b"\x01")
    bridge.side.add_command(
        identity.config.station_id,
        StartSession(
            session_id="s-bad",
            case_hash=case_hash,
            case_bytes=archive.stat().st_size,
            scenario="x",
            username="surgeon",
        ),
    )
    start_runner(tmp_path / "station", runner_thread)
    deadline = time.monotonic() + 15
    while bridge.side.command_state("s-bad") == (0, ""):
        assert time.monotonic() < deadline, "the station never answered the command"
        time.sleep(0.05)
    _, error = bridge.side.command_state("s-bad") or (0, "")
    assert "case hash mismatch" in error
    assert not (tmp_path / "station" / "cases" / "cases" / case_hash[7:]).exists()
    assert not (tmp_path / "station" / "cases" / "partial" / f"{case_hash[7:]}.part").exists()


def test_a_revoked_station_stops(bridge: Bridge, tmp_path: Path) -> None:
    identity = enrol_station(bridge, tmp_path / "station")
    proc = subprocess.Popen(
        osteon("station", "run", "--dir", str(tmp_path / "station")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while bridge.side.presence(identity.config.station_id)[0] != "online":
            assert time.monotonic() < deadline, "the station never came online"
            time.sleep(0.1)
        bridge.side.revoke(identity.config.station_id)
        assert proc.wait(timeout=5) == 3
        assert "revoked" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_station_killed_mid_session_reports_the_session_aborted_on_restart(
    bridge: Bridge, tmp_path: Path, phantom: Path
) -> None:
    identity = enrol_station(bridge, tmp_path / "station")
    case_hash, archive = pack_case(phantom, bridge.case_store)
    bridge.side.add_command(
        identity.config.station_id,
        StartSession(
            session_id="sess-killed",
            case_hash=case_hash,
            case_bytes=archive.stat().st_size,
            scenario="pedicle_pilot_hole",
            username="surgeon",
        ),
    )
    run = osteon("station", "run", "--dir", str(tmp_path / "station"))
    first = subprocess.Popen(run, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "station" / "running-session.json"
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the session never started"
            time.sleep(0.05)
        assert bridge.side.command_state("sess-killed") == (1, "")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    second = subprocess.Popen(run, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while (
            "stopped during the session"
            not in (bridge.side.command_state("sess-killed") or (0, ""))[1]
        ):
            assert time.monotonic() < deadline, "the restarted station did not report the abort"
            time.sleep(0.1)
        assert not marker.exists()
        # nothing was saved for the killed session, so nothing can arrive for it
        assert bridge.side.accepted_ids() == []
    finally:
        os.kill(second.pid, signal.SIGKILL)
        second.wait()
