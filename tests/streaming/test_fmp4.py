"""The fragmented-MP4 splitter on real ffmpeg output (raw RGB frames in, as a Panda3D view
gives them) and on crafted boxes, broken ones included."""

import random
import struct
import subprocess

import numpy as np
import pytest

from streaming.fmp4 import Fmp4Error, Fmp4Splitter, Fragment, InitSegment, Segment
from streaming.sources import LADDER, SourceSpec, build_pipeline

FPS = 10
FRAMES = 30  # 3 s: three keyframes, fragments of 0.2 s between them


@pytest.fixture(scope="module")
def encoded() -> bytes:
    """3 s of moving 320x180 RGB frames through the raw-source pipeline, as one byte string."""
    source = SourceSpec("raw", fps=FPS, raw_size=(320, 180))
    process = build_pipeline(source, LADDER["360p"]).run_async(
        pipe_stdin=True, pipe_stdout=True, quiet=True
    )
    frames = np.zeros((FRAMES, 180, 320, 3), dtype=np.uint8)
    for i in range(FRAMES):
        frames[i, :, (i * 10) % 320 :, 0] = 255  # a red edge sweeping right
        frames[i, (i * 5) % 180 :, :, 2] = 200
    out, err = process.communicate(frames.tobytes(), timeout=60)
    assert process.returncode == 0, err
    return bytes(out)


def split(data: bytes, chunk_sizes: list[int]) -> list[Segment]:
    splitter = Fmp4Splitter()
    segments: list[Segment] = []
    pos = 0
    while pos < len(data):
        size = chunk_sizes[len(segments) % len(chunk_sizes)] if chunk_sizes else len(data)
        segments.extend(splitter.feed(data[pos : pos + size]))
        pos += size
    splitter.close()
    return segments


def test_it_cuts_ffmpeg_output_into_init_then_keyframe_marked_fragments(encoded: bytes) -> None:
    segments = split(encoded, [])
    init, fragments = segments[0], segments[1:]
    assert isinstance(init, InitSegment)
    assert init.data[4:8] == b"ftyp" and b"moov" in init.data
    assert all(isinstance(f, Fragment) for f in fragments)
    frags = [f for f in fragments if isinstance(f, Fragment)]
    # nothing lost or added but the random-access index ffmpeg appends on exit
    joined = init.data + b"".join(f.data for f in frags)
    assert encoded.startswith(joined) and encoded[len(joined) + 4 : len(joined) + 8] == b"mfra"
    # sequence numbers count up from 1
    assert [f.sequence for f in frags] == list(range(1, len(frags) + 1))
    # a keyframe each second (the first fragment included), small fragments between them
    assert frags[0].keyframe
    assert sum(f.keyframe for f in frags) == FRAMES // FPS
    assert len(frags) > FRAMES // FPS


def test_it_gives_the_same_segments_whatever_the_chunk_sizes(encoded: bytes) -> None:
    whole = split(encoded, [])
    rng = random.Random(7)
    for sizes in ([1, 2, 3, 5, 8, 13], [4096], [rng.randint(1, 30000) for _ in range(50)]):
        assert split(encoded, sizes) == whole


def box(box_type: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), box_type) + body


def full_box(box_type: bytes, flags: int, body: bytes) -> bytes:
    return box(box_type, struct.pack(">I", flags) + body)


def init_segment(*, trex_flags: int) -> bytes:
    # one video track (id 1): tkhd, mdia/hdlr 'vide', and mvex/trex with default flags
    tkhd = full_box(b"tkhd", 0, struct.pack(">III", 0, 0, 1) + bytes(68))
    hdlr = full_box(b"hdlr", 0, struct.pack(">I4s", 0, b"vide") + bytes(12))
    trak = box(b"trak", tkhd + box(b"mdia", hdlr))
    trex = full_box(b"trex", 0, struct.pack(">IIIII", 1, 1, 0, 0, trex_flags))
    return box(b"ftyp", b"isom" + bytes(4)) + box(b"moov", trak + box(b"mvex", trex))


def fragment(*, sequence: int, tfhd_flags: int | None, trun: bytes) -> bytes:
    tfhd_body = struct.pack(">I", 1)
    if tfhd_flags is not None:
        tfhd_body += struct.pack(">I", tfhd_flags)
    tfhd = full_box(b"tfhd", 0x20 if tfhd_flags is not None else 0, tfhd_body)
    mfhd = full_box(b"mfhd", 0, struct.pack(">I", sequence))
    return box(b"moof", mfhd + box(b"traf", tfhd + trun)) + box(b"mdat", b"\x00" * 10)


NON_SYNC = 0x0001_0000
SYNC = 0x0200_0000  # depends on no other sample


@pytest.mark.parametrize(
    ("trex_flags", "tfhd_flags", "trun", "keyframe"),
    [
        # trun first_sample_flags wins over everything
        (NON_SYNC, NON_SYNC, full_box(b"trun", 0x04, struct.pack(">II", 2, SYNC)), True),
        # trun per-sample flags, after per-sample duration and size
        (SYNC, SYNC, full_box(b"trun", 0x700, struct.pack(">IIII", 1, 40, 99, NON_SYNC)), False),
        # no flags in trun: tfhd default_sample_flags
        (NON_SYNC, SYNC, full_box(b"trun", 0, struct.pack(">I", 3)), True),
        (SYNC, NON_SYNC, full_box(b"trun", 0, struct.pack(">I", 3)), False),
        # nor in tfhd: trex
        (SYNC, None, full_box(b"trun", 0, struct.pack(">I", 3)), True),
        (NON_SYNC, None, full_box(b"trun", 0, struct.pack(">I", 3)), False),
        # no samples: nothing to start on
        (SYNC, None, full_box(b"trun", 0, struct.pack(">I", 0)), False),
    ],
)
def test_it_reads_the_keyframe_flag_from_trun_then_tfhd_then_trex(
    trex_flags: int, tfhd_flags: int | None, trun: bytes, keyframe: bool
) -> None:
    splitter = Fmp4Splitter()
    styp = box(b"styp", b"msdh" + bytes(4))
    segments = splitter.feed(init_segment(trex_flags=trex_flags) + styp)
    segments += splitter.feed(fragment(sequence=9, tfhd_flags=tfhd_flags, trun=trun))
    assert isinstance(segments[0], InitSegment)
    assert segments[1] == Fragment(
        styp + fragment(sequence=9, tfhd_flags=tfhd_flags, trun=trun), keyframe, 9
    )


def test_it_refuses_a_box_smaller_than_its_header() -> None:
    with pytest.raises(Fmp4Error, match="under its header"):
        Fmp4Splitter().feed(struct.pack(">I4s", 4, b"ftyp") + bytes(16))
    with pytest.raises(Fmp4Error, match="under its header"):
        Fmp4Splitter().feed(struct.pack(">I4sQ", 1, b"ftyp", 12) + bytes(16))


def test_it_refuses_an_absurd_size_from_the_header_alone() -> None:
    # 2**60 bytes announced: refused at once, nothing waits for (or allocates) that much
    splitter = Fmp4Splitter(max_box_bytes=1024)
    with pytest.raises(Fmp4Error, match="over the 1024 byte cap"):
        splitter.feed(struct.pack(">I4sQ", 1, b"mdat", 2**60))
    with pytest.raises(Fmp4Error, match="over the 1024 byte cap"):
        Fmp4Splitter(max_box_bytes=1024).feed(struct.pack(">I4s", 2000, b"ftyp"))


def test_it_refuses_a_segment_of_many_small_boxes_over_the_cap() -> None:
    splitter = Fmp4Splitter(max_box_bytes=1024)
    with pytest.raises(Fmp4Error, match="one segment runs over"):
        splitter.feed(box(b"free", bytes(500)) * 3)


def test_it_refuses_a_stream_cut_short(encoded: bytes) -> None:
    splitter = Fmp4Splitter()
    splitter.feed(encoded[: len(encoded) // 2])
    with pytest.raises(Fmp4Error, match="ended inside"):
        splitter.close()
    # and a fragment whose mdat never came
    init = split(encoded, [])[0]
    assert isinstance(init, InitSegment)
    splitter = Fmp4Splitter()
    splitter.feed(init.data + box(b"moof", b""))
    with pytest.raises(Fmp4Error, match="moof without its mdat"):
        splitter.close()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (box(b"mdat", bytes(4)), "before the init segment"),
        (init_segment(trex_flags=0) + box(b"mdat", b""), "mdat without a moof"),
        (init_segment(trex_flags=0) + box(b"moof", b"") * 2, "two moof"),
        (init_segment(trex_flags=0) * 2, "after the init segment"),
        (struct.pack(">I4s", 0, b"mdat"), "size 0"),
        # a child box claiming more than its parent holds
        (box(b"ftyp", b"") + box(b"moov", struct.pack(">I4s", 999, b"trak")), "does not fit"),
        # a tfhd too short for the fields its flags announce
        (
            init_segment(trex_flags=0)
            + box(b"moof", box(b"traf", full_box(b"tfhd", 0x20, struct.pack(">I", 1))))
            + box(b"mdat", b""),
            "tfhd box is truncated",
        ),
    ],
)
def test_it_refuses_boxes_out_of_order_or_inconsistent(data: bytes, message: str) -> None:
    with pytest.raises(Fmp4Error, match=message):
        Fmp4Splitter().feed(data)


def test_the_raw_frames_pipeline_writes_playable_h264(encoded: bytes) -> None:
    # the raw pipeline's output is a playable MP4 on its own
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", "-"],
        input=encoded,
        capture_output=True,
        check=True,
    )
    assert probe.stdout.decode().split() == ["h264"]
