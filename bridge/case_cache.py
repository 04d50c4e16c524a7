"""The station's case cache: archives fetched by hash in chunks, resumable, checked, unpacked.

Layout under the cache directory::

    partial/<hex>.part   bytes received so far (a restart resumes at its length)
    cases/<hex>/         the unpacked bundle, present only once the whole archive's sha256
                         matched <hex>

A finished archive whose sha256 is not the hash asked for is deleted and refused
(``CaseHashMismatchError``): the station never runs a case it has not verified.
"""

import hashlib
from pathlib import Path

from bridge.case_archive import HASH_PREFIX, unpack_case


class CaseHashMismatchError(Exception):
    """The received archive does not hash to the case hash it was asked for."""


def _hex(case_hash: str) -> str:
    hex_part = case_hash.removeprefix(HASH_PREFIX)
    if (
        not case_hash.startswith(HASH_PREFIX)
        or len(hex_part) != 64
        or any(c not in "0123456789abcdef" for c in hex_part)
    ):
        raise ValueError(f"not a case hash: {case_hash[:80]!r}")
    return hex_part


class CaseCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "partial").mkdir(parents=True, exist_ok=True)
        (root / "cases").mkdir(parents=True, exist_ok=True)

    def bundle(self, case_hash: str) -> Path | None:
        """The verified, unpacked case, or None when it must be fetched."""
        path = self.root / "cases" / _hex(case_hash)
        return path if (path / "case.json").is_file() else None

    def _partial(self, case_hash: str) -> Path:
        return self.root / "partial" / f"{_hex(case_hash)}.part"

    def resume_offset(self, case_hash: str) -> int:
        """How many bytes of the archive are already here."""
        part = self._partial(case_hash)
        return part.stat().st_size if part.exists() else 0

    def append(self, case_hash: str, offset: int, data: bytes) -> int:
        """Write a chunk at ``offset`` (must be the current length); return the new length."""
        part = self._partial(case_hash)
        with part.open("ab") as f:
            if f.tell() != offset:
                # a chunk for another offset (a late answer to an older request): ignore it
                return f.tell()
            # no fsync per chunk: after a crash the whole-archive hash check catches any loss
            f.write(data)
            return f.tell()

    def finish(self, case_hash: str) -> Path:
        """Check the whole archive's hash, unpack it, drop the partial file."""
        part = self._partial(case_hash)
        digest = hashlib.sha256()
        with part.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        got = HASH_PREFIX + digest.hexdigest()
        if got != case_hash:
            part.unlink(missing_ok=True)
            raise CaseHashMismatchError(f"received {got}, asked for {case_hash}")
        dest = unpack_case(part, self.root / "cases" / _hex(case_hash))
        part.unlink(missing_ok=True)
        return dest
