"""Cases as content-addressed archives: a deterministic tar of a case bundle directory.

The same bundle always packs to the same bytes (sorted names, zero times, fixed owner and
modes, no compression: the volumes are already compressed npz), so the archive's sha256 is the
case's address on the bridge (``"sha256:<hex>"``). ``unpack_case`` refuses members that are not
plain files or directories inside the destination.
"""

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from sim_core.atomic_write import write_bytes_atomic

HASH_PREFIX = "sha256:"


class CaseArchiveError(Exception):
    """An archive that does not unpack to a plain case directory."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return HASH_PREFIX + digest.hexdigest()


def pack_bytes(bundle_dir: Path) -> bytes:
    """The archive of ``bundle_dir`` (files under it, sorted, metadata zeroed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in bundle_dir.rglob("*")):
            rel = path.relative_to(bundle_dir).as_posix()
            info = tarfile.TarInfo(rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif path.is_file():
                info.mode = 0o644
                info.size = path.stat().st_size
                with path.open("rb") as f:
                    tar.addfile(info, f)
    return buf.getvalue()


def pack_case(bundle_dir: Path, store_dir: Path) -> tuple[str, Path]:
    """Pack ``bundle_dir`` into ``store_dir/<hex>.tar``; return (case hash, archive path)."""
    data = pack_bytes(bundle_dir)
    case_hash = HASH_PREFIX + hashlib.sha256(data).hexdigest()
    out = store_dir / f"{case_hash.removeprefix(HASH_PREFIX)}.tar"
    if not out.exists():
        write_bytes_atomic(out, data)
    return case_hash, out


def archive_in_store(store_dir: Path, case_hash: str) -> Path | None:
    """The archive for ``case_hash`` in ``store_dir``, if there (its name is its hash)."""
    hex_part = case_hash.removeprefix(HASH_PREFIX)
    if not case_hash.startswith(HASH_PREFIX) or len(hex_part) != 64:
        return None
    if any(c not in "0123456789abcdef" for c in hex_part):
        return None
    path = store_dir / f"{hex_part}.tar"
    return path if path.is_file() else None


def unpack_case(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` into the new directory ``dest`` (atomically: sibling, then rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar.getmembers():
                if not (member.isfile() or member.isdir()):
                    raise CaseArchiveError(f"not a plain file: {member.name!r}")
            tar.extractall(tmp, filter="data")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CaseArchiveError(str(exc)) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
