"""Files served with HTTP range requests: a <video> element seeks by asking for byte ranges.

The whole file (200) without a range, one range (206), 416 for a range beyond the file; never
kept by a shared cache (what is served here is a patient's or a trainee's recording). Used by
the stations' replay videos and the live sessions' recordings.
"""

import re
from collections.abc import Iterator
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK_BYTES = 256 * 1024


def ranged_file_response(
    request: HttpRequest, path: Path, *, content_type: str = "video/mp4"
) -> HttpResponseBase:
    """``path`` whole or the one byte range the request asks for.

    Precondition: the caller checked access and that ``path`` is a regular file.
    """
    size = path.stat().st_size
    header = request.headers.get("Range", "")
    match = _RANGE.match(header.strip()) if header else None
    if match is None or (not match.group(1) and not match.group(2)):
        # no range (or one this server does not serve, e.g. several): the whole file
        response: HttpResponseBase = FileResponse(path.open("rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return _private(response)
    first_raw, last_raw = match.groups()
    if first_raw:
        first = int(first_raw)
        last = min(int(last_raw), size - 1) if last_raw else size - 1
    else:  # "bytes=-N": the last N bytes
        first, last = max(size - int(last_raw), 0), size - 1
    if first >= size or last < first:
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return _private(refused)
    response = StreamingHttpResponse(
        _read(path, first, last - first + 1), status=206, content_type=content_type
    )
    response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    return _private(response)


def _private(response: HttpResponseBase) -> HttpResponseBase:
    response["Cache-Control"] = "private, no-store"
    return response


def _read(path: Path, first: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(first)
        left = length
        while left > 0:
            chunk = f.read(min(_CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
