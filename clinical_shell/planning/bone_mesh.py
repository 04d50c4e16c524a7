"""The planner's bone mesh: a case's bones as binary glTF (`sim_core.case.glb`), built once per
case content and kept on disk.

The file is named by the bundle's content hash and the mesh format, so a rebuilt case (a new
hash) gets a new file and an old file never answers for new content. It is written to a
temporary name and renamed, so a reader never sees half a file. The first request for a case
builds it in the request (about a second for the demo lumbar case, benchmarks/planner_3d.py);
concurrent first requests in one process wait for one build.

The directory is `settings.OSTEON_PLANNER_MESH_ROOT` (default `var/planner-meshes`).
"""

import gzip
import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from django.utils.translation import gettext as _

from clinical_shell.errors import DomainError
from clinical_shell.imaging.models import SimulationCase
from sim_core.case.bundle import BundleError, load_bundle
from sim_core.case.glb import MESH_FORMAT, GlbError, bone_glb

GLB_MEDIA_TYPE = "model/gltf-binary"
GZIP_LEVEL = 6
_HASH = re.compile(r"[A-Za-z0-9:_-]{1,80}")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def mesh_root() -> Path:
    return Path(settings.OSTEON_PLANNER_MESH_ROOT)


def mesh_key(case: SimulationCase) -> str:
    """The cache key and ETag body: the case's content and the mesh format."""
    digest = hashlib.sha256(case.content_hash.encode()).hexdigest()[:32]
    return f"{digest}-f{MESH_FORMAT}"


def _unavailable() -> DomainError:
    return DomainError("case_unavailable", _("仿真病例文件无法读取或已被改动"), status=409)


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _write_atomically(path: Path, data: bytes, key: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def bone_mesh_path(case: SimulationCase) -> Path:
    """The case's .glb on disk (and its gzip beside it, `<key>.glb.gz`), built first when
    missing; 409 "case_unavailable" when the bundle cannot be read, is not the registered one,
    or has no bone surface."""
    if not _HASH.fullmatch(case.content_hash):
        raise _unavailable()
    key = mesh_key(case)
    path = mesh_root() / f"{key}.glb"
    if path.is_file() and _gzip_path(path).is_file():
        return path
    with _lock_for(key):
        if path.is_file() and _gzip_path(path).is_file():
            return path
        try:
            bundle = load_bundle(case.path)
        except (BundleError, OSError, ValueError):
            raise _unavailable() from None
        if bundle.content_hash != case.content_hash:
            raise _unavailable()
        try:
            data = bone_glb(bundle)
        except GlbError:
            raise _unavailable() from None
        path.parent.mkdir(parents=True, exist_ok=True)
        # the compressed copy first: once the .glb is there, both are
        _write_atomically(_gzip_path(path), gzip.compress(data, GZIP_LEVEL, mtime=0), key)
        _write_atomically(path, data, key)
    return path


def _gzip_path(path: Path) -> Path:
    return path.with_name(path.name + ".gz")


def _accepts_gzip(request: HttpRequest) -> bool:
    for coding in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip().lower() == "gzip" and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def bone_mesh_response(request: HttpRequest, case: SimulationCase) -> HttpResponse:
    """The case's .glb, or 304 when the client holds this content already (its ETag).

    The caller has opened the case through its access function (audited) before this runs, for
    a 304 too: "private, no-cache" lets the browser keep the file but makes it ask each time,
    so a reader who has lost access to the patient does not get the bones from its cache.
    """
    # gzip halves the payload on a county link (a .glb is floats and indices: ~0.53 of raw);
    # each encoding has its own ETag, as the two bodies differ
    gzipped = _accepts_gzip(request)
    etag = f'"{mesh_key(case)}{"-gz" if gzipped else ""}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Accept-Encoding"}
    asked = request.headers.get("If-None-Match", "")
    if etag in parse_etags(asked) or asked.strip() == "*":
        return HttpResponseNotModified(headers=headers)
    path = bone_mesh_path(case)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        path = _gzip_path(path)
    return HttpResponse(path.read_bytes(), content_type=GLB_MEDIA_TYPE, headers=headers)
