"""Recording of a live stream to MP4 files, beside the fan-out to viewers.

The relay records per live session, not per room: when the shell says a session is live (a
control message, or a viewer's token naming the session), each of the session's streams gets
its own `StreamRecorder` on that stream's feed (the highest quality it runs), writing into the
session's folder ``<record_dir>/<room>/<session>/``; when the shell ends the session, its
recorders stop. Two sessions that overlap in one room so each get their own files, covering
only the time each was live.

A recorder starts a file at the first keyframe it sees after its init segment (a session that
starts mid-run joins at a keyframe, like a late viewer): ``<stream>-<UTC time>-m<media
ms>.mp4.part``, where the media time is the fragment's start on the encoder's timeline (what a
live viewer's ``video.currentTime`` showed for it), so drawings stamped with a viewer's media
time can be placed on the recording. Every fragment after it is appended as it arrives (a
fragmented MP4 is a valid file at every fragment boundary). When the source stops (lost,
restarted, the session ended or the relay stopping) the file is closed and remuxed by ffmpeg
(``-c copy -movflags +faststart``) into an ordinary MP4 whose index (``moov``) comes before the
media and whose time starts at 0, so a browser seeks in it at once; the ``.part`` is then
removed. A source restart starts a new file, so no file mixes the init segments of two encoder
runs.

The room, session and stream names come from the relay's validated config and control
messages (``[A-Za-z0-9_-]``), never from a viewer. A disk error is logged and ends that
recorder; the viewers do not notice.
"""

import asyncio
import contextlib
import logging
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from streaming.fmp4 import Fmp4Error, Fragment, media_time_s

log = logging.getLogger("streaming.recorder")

PART_SUFFIX = ".part"
# the remux copies the streams: minutes of 1080p take seconds, an hour well under a minute [s]
REMUX_TIMEOUT_S = 600.0


def recording_name(stream: str, started: datetime, media_start_s: float = 0.0) -> str:
    """``<stream>-<YYYYmmddTHHMMSS.mmmZ>-m<media ms>.mp4``; milliseconds, so a quick restart
    gets a new name; the media time is where the file's first frame sits on the encoder's
    timeline."""
    at = started.astimezone(UTC)
    media_ms = max(0, round(media_start_s * 1000))
    return f"{stream}-{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}Z-m{media_ms}.mp4"


def finalize_recording(part: Path, final: Path, *, ffmpeg_path: str = "ffmpeg") -> None:
    """Remux the fragmented ``part`` into ``final`` (moov first), then remove ``part``.

    The output is written beside ``final`` under a temporary name and renamed into place, so a
    reader looking for ``*.mp4`` never sees half a file. Raises OSError or
    subprocess.CalledProcessError (``part`` is then kept: it is itself a playable file).
    """
    partial = final.with_name(final.name + ".tmp")
    argv = [ffmpeg_path, "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    argv += ["-i", str(part), "-map", "0", "-c", "copy", "-movflags", "+faststart"]
    argv += ["-f", "mp4", str(partial)]
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=REMUX_TIMEOUT_S)
        os.replace(partial, final)
    except (OSError, subprocess.SubprocessError):
        partial.unlink(missing_ok=True)
        raise
    part.unlink()


class StreamRecorder:
    """The recording of one stream for one session: at most one open file; finished files
    remuxed in the background (`drain` waits for them)."""

    def __init__(self, *, folder: Path, stream: str, ffmpeg_path: str) -> None:
        self.folder = folder
        self.stream = stream
        self.ffmpeg_path = ffmpeg_path
        self.failed = False
        self._init: bytes | None = None
        self._file: BinaryIO | None = None
        self._part: Path | None = None
        self._fragments = 0
        self._finishing: set[asyncio.Task[None]] = set()

    def begin(self, init: bytes) -> None:
        """A new encoder run's init segment: close the current file; the next file starts at
        the next keyframe."""
        self.end()
        self._init = init

    def write(self, fragment: Fragment) -> None:
        """Append one fragment of the current encoder run (after `begin`)."""
        if self._init is None or self.failed:
            return
        if self._file is None:
            if not fragment.keyframe:
                return
            self._open(self._init, fragment)
            return
        try:
            self._file.write(fragment.data)
        except OSError as exc:
            self._fail(exc)
            return
        self._fragments += 1

    def _open(self, init: bytes, fragment: Fragment) -> None:
        try:
            media_start_s = media_time_s(init, fragment.data) or 0.0
        except Fmp4Error:
            media_start_s = 0.0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            final = self.folder / recording_name(self.stream, datetime.now(UTC), media_start_s)
            part = final.with_name(final.name + PART_SUFFIX)
            # "x": never overwrite a file, even one with the same name
            file = part.open("xb")
            self._file, self._part = file, part
            file.write(init)
            file.write(fragment.data)
        except OSError as exc:
            self._fail(exc)
            return
        self._fragments = 1
        log.info("%s: recording to %s", self.stream, part)

    def end(self) -> None:
        """The source stopped (or the session ended): close the file, remux it in the
        background."""
        self._init = None
        file, part, self._file, self._part = self._file, self._part, None, None
        if file is None or part is None:
            return
        try:
            file.close()
        except OSError as exc:
            self._fail(exc)
            return
        if self._fragments == 0:
            # an init segment and no picture: nothing to keep
            part.unlink(missing_ok=True)
            return
        task = asyncio.create_task(self._finish(part))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def drain(self) -> None:
        """Close the current file and wait until every finished file is remuxed."""
        self.end()
        while pending := [task for task in self._finishing if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _finish(self, part: Path) -> None:
        final = part.with_name(part.name.removesuffix(PART_SUFFIX))
        try:
            await asyncio.to_thread(finalize_recording, part, final, ffmpeg_path=self.ffmpeg_path)
        except subprocess.CalledProcessError as exc:
            why = exc.stderr.decode("utf-8", "replace").strip()[:300] if exc.stderr else ""
            log.error("%s: remux of %s failed, kept: %s", self.stream, part, why)
            return
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("%s: remux of %s failed, kept: %s", self.stream, part, exc)
            return
        log.info("%s: recorded %s", self.stream, final)

    def _fail(self, exc: OSError) -> None:
        # a full or broken disk: stop recording this stream, keep serving its viewers
        log.error("%s: recording stopped: %s", self.folder / self.stream, exc)
        self.failed = True
        file, self._file, self._part = self._file, None, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
