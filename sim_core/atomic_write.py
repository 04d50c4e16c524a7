"""Files written whole or not at all: a temporary sibling, flushed to disk, renamed over the target.

Recordings, results, keys and case archives are read by other processes (the shell, a replay,
a restarted station): a crash mid-write must leave the old file or none, never half of one.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: Path, *, private: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` when the block ends without an exception.

    The parent folder is created. ``private``: the file is readable by its owner only (0600)
    from the moment it exists, and so is a newly created parent folder. On an exception the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if private:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all (see ``atomic_write``)."""
    with atomic_write(path, private=private) as f:
        f.write(data)


def write_text_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Write ``text`` as UTF-8 to ``path`` whole or not at all (see ``atomic_write``)."""
    write_bytes_atomic(path, text.encode("utf-8"), private=private)
