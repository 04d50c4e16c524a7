"""Recording of a live stream to MP4 files, beside the fan-out to viewers.

The relay hands each recorded stream's feed (the highest quality it runs) to one
`StreamRecorder`: every init segment starts a new file ``<record_dir>/<room>/<stream>-<UTC
time>.mp4.part`` and every fragment after it is appended as it arrives (a fragmented MP4 is a
valid file at every fragment boundary). When the source stops (lost, restarted, or the relay
stopping) the file is closed and remuxed by ffmpeg (``-c copy -movflags +faststart``) into an
ordinary MP4 whose index (``moov``) comes before the media, so a browser seeks in it at once;
the ``.part`` is then removed. A source restart starts a new file, so no file mixes the init
segments of two encoder runs.

The room and stream names come from the relay's validated config (``[A-Za-z0-9_-]``), never from
a viewer. A disk error is logged and ends recording of that stream for the rest of the relay's
run; the viewers do not notice.
"""

import asyncio
import contextlib
import logging
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from streaming.fmp4 import Fragment

log = logging.getLogger("streaming.recorder")

PART_SUFFIX = ".part"
# the remux copies the streams: minutes of 1080p take seconds, an hour well under a minute [s]
REMUX_TIMEOUT_S = 600.0


def recording_name(stream: str, started: datetime) -> str:
    """``<stream>-<YYYYmmddTHHMMSS.mmmZ>.mp4``; milliseconds, so a quick restart gets a new name."""
    at = started.astimezone(UTC)
    return f"{stream}-{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}Z.mp4"


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
    """The recording of one stream: at most one open file; finished files remuxed in the
    background (`drain` waits for them)."""

    def __init__(self, *, record_dir: Path, room: str, stream: str, ffmpeg_path: str) -> None:
        self.folder = record_dir / room
        self.room = room
        self.stream = stream
        self.ffmpeg_path = ffmpeg_path
        self.failed = False
        self._file: BinaryIO | None = None
        self._part: Path | None = None
        self._fragments = 0
        self._finishing: set[asyncio.Task[None]] = set()

    def begin(self, init: bytes) -> None:
        """A new encoder run's init segment: close the current file, open a new one with it."""
        self.end()
        if self.failed:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            final = self.folder / recording_name(self.stream, datetime.now(UTC))
            self._part = final.with_name(final.name + PART_SUFFIX)
            # "x": never overwrite a file, even one with the same name
            self._file = self._part.open("xb")
            self._file.write(init)
        except OSError as exc:
            self._fail(exc)
            return
        self._fragments = 0
        log.info("%s/%s: recording to %s", self.room, self.stream, self._part)

    def write(self, fragment: Fragment) -> None:
        """Append one fragment of the current encoder run (after `begin`)."""
        if self._file is None:
            return
        try:
            self._file.write(fragment.data)
        except OSError as exc:
            self._fail(exc)
            return
        self._fragments += 1

    def end(self) -> None:
        """The source stopped: close the file and remux it in the background."""
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
            log.error("%s/%s: remux of %s failed, kept: %s", self.room, self.stream, part, why)
            return
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("%s/%s: remux of %s failed, kept: %s", self.room, self.stream, part, exc)
            return
        log.info("%s/%s: recorded %s", self.room, self.stream, final)

    def _fail(self, exc: OSError) -> None:
        # a full or broken disk: stop recording this stream, keep serving its viewers
        log.error("%s/%s: recording stopped: %s", self.room, self.stream, exc)
        self.failed = True
        file, self._file, self._part = self._file, None, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
