"""The wall clock burned into a test picture reads back exactly from real H.264 frames.

The glass-to-glass benchmark (benchmarks/glass_to_glass.py) trusts this pattern: if it read
wrongly, the latency it reports would be wrong without anyone noticing.
"""

import subprocess
import time

import numpy as np
import pytest

from streaming.sources import LADDER, SourceSpec, command, read_burned_clock

FPS = 30
SECONDS = 2.0


def _encode_and_decode(quality: str) -> tuple[list[int | None], int, int]:
    # the relay's own pipeline, stopped after SECONDS; then every frame decoded to grey
    rung = LADDER[quality]
    argv = command(SourceSpec("test", fps=FPS, burn_clock=True), rung)
    before_ms = time.time_ns() // 1_000_000
    encoder = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # read while it runs: a full pipe would stall the encoder and its clock
    try:
        encoder.communicate(timeout=SECONDS)
    except subprocess.TimeoutExpired:
        encoder.terminate()
    fmp4, errors = encoder.communicate(timeout=20)
    after_ms = time.time_ns() // 1_000_000
    assert fmp4, errors.decode(errors="replace")
    grey = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:"],
        input=fmp4,
        capture_output=True,
        check=True,
    ).stdout
    frames = np.frombuffer(grey, np.uint8).reshape(-1, rung.height, rung.width)
    return [read_burned_clock(frame) for frame in frames], before_ms, after_ms


@pytest.mark.parametrize("quality", ["720p", "360p"])
def test_the_burned_clock_reads_back_from_every_encoded_frame(quality: str) -> None:
    stamps, before_ms, after_ms = _encode_and_decode(quality)

    assert len(stamps) >= FPS, f"only {len(stamps)} frames"
    assert None not in stamps, (
        f"unreadable frames at {[i for i, s in enumerate(stamps) if s is None]}"
    )
    readable = [s for s in stamps if s is not None]
    # each stamp is the wall clock while the encoder ran (mod 2**32 ms, as burned)
    for stamp in readable:
        assert (stamp - before_ms) % 2**32 <= after_ms - before_ms
    # -re paces frames at real time: consecutive stamps about one frame apart, never backwards
    # (the output's constant rate may repeat a frame, stamp and all)
    steps_ms = np.diff(np.array(readable, dtype=np.int64))
    assert np.all(steps_ms >= 0)
    assert abs(float(np.median(steps_ms)) - 1000 / FPS) < 5


def test_a_picture_without_the_pattern_reads_as_none() -> None:
    flat = np.full((720, 1280), 128, np.uint8)
    noise = np.random.default_rng(7).integers(0, 256, (720, 1280), dtype=np.uint8)

    assert read_burned_clock(flat) is None
    assert read_burned_clock(noise) is None
