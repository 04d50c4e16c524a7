"""ffmpeg pipelines (ffmpeg-python) from a live source to low-latency fragmented MP4 on stdout.

A source is one of:
- ``test``: ffmpeg's own ``testsrc2`` picture and a ``sine`` tone, read at real time (``-re``),
  the stand-in operating-room camera for tests, benchmarks and demos;
- ``url``: anything ffmpeg opens (``rtsp://`` camera, ``/dev/video0`` with ``format="v4l2"``,
  a file), scaled to the quality's size; audio is taken when the input has some;
- ``raw``: raw RGB frames on stdin, what a Panda3D offscreen view gives (`SceneView`),
  flipped because Panda3D's rows run bottom to top; no audio.

Every pipeline encodes H.264 for low latency (``zerolatency``: no lookahead, no B-frames, a
keyframe every second so a viewer joins or recovers within a second) and AAC, and writes
fragmented MP4 that starts with an empty ``moov`` and cuts a fragment at every keyframe and
at least every ``FRAGMENT_S``, so the relay can pass on small pieces as soon as they exist.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

import ffmpeg

# a fragment at least this often [s]: shorter means lower latency, more boxes per second
FRAGMENT_S = 0.2
KEYFRAME_INTERVAL_S = 1.0
SourceKind = Literal["test", "url", "raw"]


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
