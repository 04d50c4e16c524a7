"""ffmpeg pipelines (ffmpeg-python) from a live source to low-latency fragmented MP4 on stdout.

A source is one of:
- ``test``: ffmpeg's own ``testsrc2`` picture and a ``sine`` tone, read at real time (``-re``),
  the stand-in operating-room camera for tests, benchmarks and demos;
- ``url``: anything ffmpeg opens (``rtsp://`` camera, ``/dev/video0`` with ``format="v4l2"``,
  a file), scaled to the quality's size; audio is taken when the input has some;
- ``raw``: raw RGB frames on stdin, what a Panda3D offscreen view gives (`SceneView`),
  flipped because Panda3D's rows run bottom to top; no audio.

Any source may burn the wall clock into its picture (``burn_clock=True``, for measuring
glass-to-glass latency): see `burn_clock_filter` and `read_burned_clock`.

Every pipeline encodes H.264 for low latency (``zerolatency``: no lookahead, no B-frames, a
keyframe every second so a viewer joins or recovers within a second) and AAC, and writes
fragmented MP4 that starts with an empty ``moov`` and cuts a fragment at every keyframe and
at least every ``FRAGMENT_S``, so the relay can pass on small pieces as soon as they exist.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

import ffmpeg
import numpy as np
import numpy.typing as npt

# a fragment at least this often [s]: shorter means lower latency, more boxes per second
FRAGMENT_S = 0.2
KEYFRAME_INTERVAL_S = 1.0
SourceKind = Literal["test", "url", "raw"]
# the burned-in clock: Unix time in ms modulo 2**CLOCK_BITS (49.7 days), one block per bit,
# most significant first, the row below it the complement: a misread block shows as a pair
# that is not complementary instead of a plausible wrong time
CLOCK_BITS = 32
# block edge = picture height // CLOCK_BLOCKS_PER_HEIGHT: 24 px at 720p, 12 px at 360p, big and
# flat enough to survive H.264 at the ladder's bitrates and the browser's scaling
CLOCK_BLOCKS_PER_HEIGHT = 30


@dataclass(frozen=True)
class Quality:
    """One rung of the ladder: the picture size and bitrates a viewer may pick."""

    name: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int
    preset: str = "veryfast"


# bitrates for talking-head-like surgical video (mostly static field, some motion) in H.264
LADDER: dict[str, Quality] = {
    q.name: q
    for q in (
        Quality("1080p", 1920, 1080, video_kbps=4500, audio_kbps=128),
        Quality("720p", 1280, 720, video_kbps=2500, audio_kbps=128),
        # the cheap rung: ultrafast keeps several 360p encodes within a small box's CPU
        Quality("360p", 640, 360, video_kbps=800, audio_kbps=96, preset="ultrafast"),
    )
}


@dataclass(frozen=True)
class SourceSpec:
    """Where the picture comes from (see the module docstring for each kind)."""

    kind: SourceKind
    url: str = ""  # for "url": what ffmpeg opens
    # for "url": input options, e.g. {"format": "v4l2"} or {"rtsp_transport": "tcp"}
    input_options: dict[str, str] = field(default_factory=dict)
    fps: int = 25
    # for "raw": the frame size written to stdin, (width, height) in pixels
    raw_size: tuple[int, int] = (0, 0)
    audio: bool = True  # "test": add the sine tone; "url": take the input's audio if any
    # burn the wall clock into the top-left corner of the picture (`burn_clock_filter`)
    burn_clock: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("test", "url", "raw"):
            raise ValueError(f"source kind {self.kind!r}: expected test, url or raw")
        if self.kind == "url" and not self.url:
            raise ValueError("a url source needs a url")
        if self.kind == "raw" and (min(self.raw_size) <= 0):
            raise ValueError("a raw source needs raw_size (width, height)")
        if not 1 <= self.fps <= 60:
            raise ValueError(f"fps {self.fps}: expected 1..60")


def build_pipeline(source: SourceSpec, quality: Quality) -> Any:
    """The ffmpeg-python output node for ``source`` encoded at ``quality`` to fMP4 on stdout.

    Run it with ``.run_async(pipe_stdout=True, pipe_stdin=source.kind == "raw")`` or turn it
    into an argv with `command`.
    """
    size = f"{quality.width}x{quality.height}"
    streams: list[Any] = []
    if source.kind == "test":
        streams.append(
            ffmpeg.input(f"testsrc2=size={size}:rate={source.fps}", format="lavfi", re=None)
        )
        if source.audio:
            streams.append(
                ffmpeg.input("sine=frequency=440:sample_rate=48000", format="lavfi", re=None)
            )
    elif source.kind == "url":
        camera = ffmpeg.input(source.url, **source.input_options)
        streams.append(camera["v"].filter("scale", quality.width, quality.height))
        if source.audio:
            streams.append(camera["a?"])  # a camera without a microphone is fine
    else:
        width, height = source.raw_size
        frames = ffmpeg.input(
            "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=source.fps
        )
        streams.append(frames.filter("vflip").filter("scale", quality.width, quality.height))
    if source.burn_clock:
        streams[0] = burn_clock_filter(streams[0], quality.height, source.fps)
    has_audio = source.kind != "raw" and source.audio
    gop = max(1, round(source.fps * KEYFRAME_INTERVAL_S))
    options: dict[str, Any] = {
        "format": "mp4",
        "vcodec": "libx264",
        "preset": quality.preset,
        "tune": "zerolatency",
        "pix_fmt": "yuv420p",
        "profile:v": "main",
        "b:v": f"{quality.video_kbps}k",
        "maxrate": f"{quality.video_kbps}k",
        # half a second of buffer: the rate stays near the target within each fragment
        "bufsize": f"{quality.video_kbps // 2}k",
        # a keyframe exactly every second, never early on a scene cut, no B-frames
        "g": gop,
        "keyint_min": gop,
        "sc_threshold": 0,
        "bf": 0,
        "r": source.fps,
        "movflags": "frag_keyframe+empty_moov+default_base_moof",
        "frag_duration": int(FRAGMENT_S * 1_000_000),  # [µs]
        # hand each fragment to the pipe when cut, not when ffmpeg's write buffer fills
        "flush_packets": 1,
    }
    if has_audio:
        options.update({"acodec": "aac", "b:a": f"{quality.audio_kbps}k", "ar": 48000, "ac": 2})
    return (
        ffmpeg.output(*streams, "pipe:", **options)
        .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
        .overwrite_output()
    )


def command(source: SourceSpec, quality: Quality, *, ffmpeg_path: str = "ffmpeg") -> list[str]:
    """The argv that runs `build_pipeline` (for asyncio subprocesses)."""
    return list(build_pipeline(source, quality).compile(cmd=ffmpeg_path))


def clock_block_px(height: int) -> int:
    """The edge of one burned-in clock block [px] in a picture ``height`` pixels high."""
    return max(2, height // CLOCK_BLOCKS_PER_HEIGHT)


def burn_clock_filter(video: Any, height: int, fps: int) -> Any:
    """``video`` with the wall clock at the moment each frame passes this filter burned in.

    Two rows of `CLOCK_BITS` square blocks at the top left, white = 1: the upper row is
    ``unix_ms % 2**CLOCK_BITS`` (most significant bit left), the lower row its complement.
    ``height`` is the picture's height after scaling (the blocks are sized from it) and
    ``fps`` the output rate: the frames leave with regular timestamps again.
    """
    block = clock_block_px(height)
    # the frame's time becomes the wall clock (RTCTIME, µs) so that geq's T reads it;
    # settb first, or the pts would be rounded to the input's 1/fps time base
    stamped = video.filter("settb", expr="1/1000000").filter("setpts", "RTCTIME")
    stamped = stamped.filter("format", "yuv420p")
    split = stamped.split()
    main, corner = split[0], split[1]
    # only the strip is drawn by geq (a per-pixel expression): the whole 720p frame is too slow
    unix_ms = f"mod(floor(T*1000),{2**CLOCK_BITS})"
    bit = f"bitand(floor({unix_ms}/pow(2,{CLOCK_BITS - 1}-floor(X/{block}))),1)"
    lower_row = f"floor(Y/{block})"
    strip = corner.filter("crop", CLOCK_BITS * block, 2 * block, 0, 0).filter(
        "geq",
        lum=f"255*({bit}*(1-{lower_row})+(1-{bit})*{lower_row})",
        cb=128,
        cr=128,
    )
    # overlay pairs the strip with its own frame by timestamp, then regular timestamps again
    return main.overlay(strip, x=0, y=0).filter("setpts", f"N/({fps}*TB)")


def read_burned_clock(luma: npt.NDArray[np.uint8]) -> int | None:
    """The clock `burn_clock_filter` burned into a decoded picture, or None if unreadable.

    ``luma``: the picture's brightness, shape (height, width), 0..255 (the Y plane, or any
    grey conversion of RGB). Returns ``unix_ms % 2**CLOCK_BITS``. Each block is read at its
    centre; None when any bit's two rows are not one bright and one dark.
    """
    height = luma.shape[0]
    block = clock_block_px(height)
    centres = (np.arange(CLOCK_BITS) * block + block // 2).astype(np.int64)
    upper = luma[block // 2, centres] >= 128
    lower = luma[block + block // 2, centres] >= 128
    if not np.all(upper != lower):
        return None
    value = 0
    for bit in upper:
        value = (value << 1) | int(bit)
    return value
