"""Fragmented MP4 cut into what a live viewer needs: one init segment, then whole fragments.

ffmpeg writes fragmented MP4 (``-movflags frag_keyframe+empty_moov+default_base_moof``) to a
pipe; the reads give arbitrary byte chunks, not boxes. `Fmp4Splitter` buffers them and gives
back the init segment (``ftyp`` + ``moov``, once) and each fragment (``moof`` + ``mdat``, with
any ``styp``/``sidx``/``prft``/``free`` boxes written before the ``moof``), marked whether its
video track starts with a keyframe, so the relay can start a late or lagging viewer on one.

The bytes come from a child process that may be a camera feed gone wrong, so the splitter never
trusts a size: a box smaller than its header, one over ``max_box_bytes`` or data that ends in
the middle of a box raise `Fmp4Error` instead of looping or waiting for gigabytes.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass

# large enough for a 1 s GOP at 1080p and several Mbit/s with a wide margin [bytes]
MAX_BOX_BYTES = 32 * 1024 * 1024
# ISO/IEC 14496-12 8.8.3.1: bit 16 of sample flags is sample_is_non_sync_sample
_NON_SYNC_SAMPLE = 0x0001_0000
# boxes allowed between fragments, kept and sent in front of the next moof
_PRE_FRAGMENT = frozenset({b"styp", b"sidx", b"prft", b"free", b"skip", b"emsg"})


class Fmp4Error(ValueError):
    """The bytes are not a fragmented MP4 this splitter can follow; one sentence."""


@dataclass(frozen=True)
class InitSegment:
    """``ftyp`` + ``moov``: what a decoder needs before any fragment."""

    data: bytes


@dataclass(frozen=True)
class Fragment:
    """One ``moof`` + ``mdat`` (with the boxes before it), playable after the init segment."""

    data: bytes
    keyframe: bool  # the video track's first sample is a sync sample
    sequence: int  # mfhd sequence_number, counts up from 1 in one ffmpeg run


Segment = InitSegment | Fragment


class Fmp4Splitter:
    """Feed it chunks from a pipe; it returns each init segment and fragment once complete."""

    def __init__(self, *, max_box_bytes: int = MAX_BOX_BYTES) -> None:
        if max_box_bytes < 16:
            raise ValueError(f"max_box_bytes {max_box_bytes}: expected at least 16")
        self.max_box_bytes = max_box_bytes
        self._buf = bytearray()
        self._pending: list[bytes] = []  # ftyp before moov, or styp/sidx/... then moof
        self._pending_bytes = 0
        self._moof: bytes | None = None
        self._init_done = False
        self._video_track: int | None = None
        self._trex_flags: dict[int, int] = {}  # track id -> default_sample_flags

    def feed(self, chunk: bytes) -> list[Segment]:
        """Take the next bytes from the stream; return the segments they completed, in order.

        Raises Fmp4Error on a box whose size cannot be right or that breaks the box order.
        """
        self._buf += chunk
        out: list[Segment] = []
        for box_type, box in self._boxes():
            segment = self._take(box_type, box)
            if segment is not None:
                out.append(segment)
        return out

    def close(self) -> None:
        """The stream ended: raise Fmp4Error if it stopped inside a box or a fragment."""
        if self._buf:
            raise Fmp4Error(f"the stream ended inside a box ({len(self._buf)} bytes left over)")
        if self._moof is not None or (self._pending and self._init_done):
            raise Fmp4Error("the stream ended inside a fragment (moof without its mdat)")
        if self._pending:
            raise Fmp4Error("the stream ended before the init segment was complete")

    def _boxes(self) -> Iterator[tuple[bytes, bytes]]:
        # whole top-level boxes at the front of the buffer; a partial one waits for more bytes
        while len(self._buf) >= 8:
            size, box_type = struct.unpack_from(">I4s", self._buf, 0)
            header = 8
            if size == 1:
                if len(self._buf) < 16:
                    return
                (size,) = struct.unpack_from(">Q", self._buf, 8)
                header = 16
            elif size == 0:
                # "to the end of the file" has no end on a live pipe
                raise Fmp4Error(f"box {_name(box_type)} has size 0 (to end of file): not live")
            if size < header:
                raise Fmp4Error(f"box {_name(box_type)} claims {size} bytes, under its header")
            if size > self.max_box_bytes:
                cap = self.max_box_bytes
                raise Fmp4Error(
                    f"box {_name(box_type)} claims {size} bytes, over the {cap} byte cap"
                )
            if len(self._buf) < size:
                return
            box = bytes(self._buf[:size])
            del self._buf[:size]
            yield box_type, box

    def _take(self, box_type: bytes, box: bytes) -> Segment | None:
        # before the init segment: ftyp (and anything else) until moov
        if not self._init_done:
            if box_type in (b"moof", b"mdat"):
                raise Fmp4Error(f"{_name(box_type)} before the init segment (no moov yet)")
            self._hold(box)
            if box_type != b"moov":
                return None
            self._read_moov(box)
            data = b"".join(self._pending)
            self._pending, self._pending_bytes = [], 0
            self._init_done = True
            return InitSegment(data)
        # after it: [styp sidx prft ...] moof mdat, repeated
        if box_type == b"moof":
            if self._moof is not None:
                raise Fmp4Error("two moof boxes without an mdat between them")
            self._hold(box)
            self._moof = box
            return None
        if box_type == b"mdat":
            if self._moof is None:
                raise Fmp4Error("mdat without a moof before it")
            keyframe, sequence = self._read_moof(self._moof)
            self._hold(box)
            data = b"".join(self._pending)
            self._pending, self._pending_bytes, self._moof = [], 0, None
            return Fragment(data, keyframe=keyframe, sequence=sequence)
        if box_type == b"mfra" and self._moof is None and not self._pending:
            # the random-access index ffmpeg writes on exit: of no use to a live viewer
            return None
        if box_type in (b"ftyp", b"moov"):
            # a new init segment means a new stream: the caller starts a new splitter
            raise Fmp4Error(f"{_name(box_type)} after the init segment")
        if box_type not in _PRE_FRAGMENT or self._moof is not None:
            raise Fmp4Error(f"unexpected {_name(box_type)} between fragments")
        self._hold(box)
        return None

    def _hold(self, box: bytes) -> None:
        # the boxes of one segment together stay under the cap, so memory stays bounded
        self._pending_bytes += len(box)
        if self._pending_bytes > self.max_box_bytes:
            raise Fmp4Error(f"one segment runs over the {self.max_box_bytes} byte cap")
        self._pending.append(box)

    def _read_moov(self, moov: bytes) -> None:
        # which track is video (its keyframes matter), and each track's trex default flags
        for box_type, body in _children(moov, 8):
            if box_type == b"trak":
                track_id, handler = _track(body)
                if handler == b"vide" and self._video_track is None:
                    self._video_track = track_id
            elif box_type == b"mvex":
                for inner_type, inner in _children(body, 0):
                    if inner_type == b"trex":
                        _need(inner, 24, "trex")
                        track_id, _, _, _, flags = struct.unpack_from(">IIIII", inner, 4)
                        self._trex_flags[track_id] = flags

    def _read_moof(self, moof: bytes) -> tuple[bool, int]:
        # sequence number from mfhd; keyframe from the video traf's first sample flags
        sequence = 0
        keyframe: bool | None = None
        first_traf = True
        for box_type, body in _children(moof, 8):
            if box_type == b"mfhd":
                _need(body, 8, "mfhd")
                (sequence,) = struct.unpack_from(">I", body, 4)
            elif box_type == b"traf":
                track_id, sync = self._traf_starts_sync(body)
                # no video track known (audio only): the first traf decides
                if track_id == self._video_track or (self._video_track is None and first_traf):
                    keyframe = sync
                first_traf = False
        return bool(keyframe), sequence

    def _traf_starts_sync(self, traf: bytes) -> tuple[int, bool]:
        track_id = -1
        default_flags: int | None = None
        for box_type, body in _children(traf, 0):
            if box_type == b"tfhd":
                _need(body, 8, "tfhd")
                (version_flags, track_id) = struct.unpack_from(">II", body, 0)
                tf_flags = version_flags & 0xFFFFFF
                pos = 8
                # optional fields in this order: base_data_offset (8 bytes), then 4 bytes each
                # for sample_description_index, default duration, default size, default flags
                pos += 8 if tf_flags & 0x01 else 0
                for bit in (0x02, 0x08, 0x10):
                    pos += 4 if tf_flags & bit else 0
                if tf_flags & 0x20:
                    _need(body, pos + 4, "tfhd")
                    (default_flags,) = struct.unpack_from(">I", body, pos)
            elif box_type == b"trun":
                flags = _first_sample_flags(body)
                if flags == _NO_SAMPLES:
                    return track_id, False
                if flags is None:
                    flags = default_flags
                if flags is None:
                    flags = self._trex_flags.get(track_id, 0)
                return track_id, not (int(flags) & _NON_SYNC_SAMPLE)
        return track_id, False


# a trun with sample_count 0: no first sample to be a keyframe
_NO_SAMPLES = -1


def _first_sample_flags(trun: bytes) -> int | None:
    """trun body -> the first sample's flags, None when trun does not carry them."""
    _need(trun, 8, "trun")
    version_flags, count = struct.unpack_from(">II", trun, 0)
    tr_flags = version_flags & 0xFFFFFF
    if count == 0:
        return _NO_SAMPLES
    pos = 8 + (4 if tr_flags & 0x01 else 0)  # data_offset
    if tr_flags & 0x04:  # first_sample_flags overrides the first sample's
        _need(trun, pos + 4, "trun")
        return int(struct.unpack_from(">I", trun, pos)[0])
    if tr_flags & 0x400:  # per-sample flags, after per-sample duration and size
        pos += (4 if tr_flags & 0x100 else 0) + (4 if tr_flags & 0x200 else 0)
        _need(trun, pos + 4, "trun")
        return int(struct.unpack_from(">I", trun, pos)[0])
    return None


def _track(trak: bytes) -> tuple[int, bytes]:
    """trak body -> (track id from tkhd, handler type from mdia/hdlr)."""
    track_id, handler = -1, b""
    for box_type, body in _children(trak, 0):
        if box_type == b"tkhd":
            version = body[0] if body else 0
            offset = 4 + (16 if version == 1 else 8)  # after creation/modification times
            _need(body, offset + 4, "tkhd")
            (track_id,) = struct.unpack_from(">I", body, offset)
        elif box_type == b"mdia":
            for inner_type, inner in _children(body, 0):
                if inner_type == b"hdlr":
                    _need(inner, 12, "hdlr")
                    handler = inner[8:12]
    return track_id, handler


def _children(data: bytes, start: int) -> Iterator[tuple[bytes, bytes]]:
    """(type, body) of each box inside ``data[start:]``; sizes checked against the parent."""
    pos = start
    end = len(data)
    while pos < end:
        if end - pos < 8:
            raise Fmp4Error("a child box header runs past its parent")
        size, box_type = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise Fmp4Error("a child box header runs past its parent")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Fmp4Error(f"child box {_name(box_type)} size {size} does not fit its parent")
        yield box_type, data[pos + header : pos + size]
        pos += size


def _need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise Fmp4Error(f"{what} box is truncated ({len(body)} bytes, needs {size})")


def _name(box_type: bytes) -> str:
    return repr(box_type.decode("latin-1"))


def media_time_s(init: bytes, fragment: bytes) -> float | None:
    """When ``fragment`` starts on its video track's timeline [s] (its ``tfdt`` over the
    track's ``mdhd`` timescale): what a browser's ``video.currentTime`` shows for it through
    Media Source Extensions. None when either segment lacks what it takes (no video track, no
    ``tfdt``). Raises Fmp4Error on boxes that do not fit."""
    track_id, timescale = -1, 0
    for box_type, body in _children(init, 0):
        if box_type != b"moov":
            continue
        for inner_type, trak in _children(body, 0):
            if inner_type != b"trak":
                continue
            found_id, handler = _track(trak)
            if handler != b"vide":
                continue
            track_id = found_id
            for mdia_type, mdia in _children(trak, 0):
                if mdia_type != b"mdia":
                    continue
                for mdhd_type, mdhd in _children(mdia, 0):
                    if mdhd_type == b"mdhd":
                        offset = 4 + (16 if mdhd[:1] == b"\x01" else 8)
                        _need(mdhd, offset + 4, "mdhd")
                        (timescale,) = struct.unpack_from(">I", mdhd, offset)
            break
    if track_id < 0 or timescale <= 0:
        return None
    for box_type, moof in _children(fragment, 0):
        if box_type != b"moof":
            continue
        for traf_type, traf in _children(moof, 0):
            if traf_type != b"traf":
                continue
            traf_track, decode_time = -1, None
            for inner_type, body in _children(traf, 0):
                if inner_type == b"tfhd":
                    _need(body, 8, "tfhd")
                    (traf_track,) = struct.unpack_from(">I", body, 4)
                elif inner_type == b"tfdt":
                    _need(body, 8, "tfdt")
                    if body[0] == 1:
                        _need(body, 12, "tfdt")
                        (decode_time,) = struct.unpack_from(">Q", body, 4)
                    else:
                        (decode_time,) = struct.unpack_from(">I", body, 4)
            if traf_track == track_id and decode_time is not None:
                return float(decode_time) / timescale
    return None
