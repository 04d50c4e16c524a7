"""Files written whole or not at all (recordings, results, keys, case archives)."""

import stat
from pathlib import Path

import pytest

from sim_core.atomic_write import atomic_write, write_bytes_atomic, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_a_write_replaces_the_file_and_creates_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "rec.bin"
    write_bytes_atomic(target, b"\x00\x01")
    write_bytes_atomic(target, b"\x02")
    assert target.read_bytes() == b"\x02"
    assert sorted(p.name for p in target.parent.iterdir()) == ["rec.bin"]


def test_a_private_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "keys" / "station.key"
    write_text_atomic(target, "secret", private=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) & 0o077 == 0
