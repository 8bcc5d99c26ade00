"""replace_file: whole or not at all, and two writers never share a temporary file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ferry.files import replace_file


def test_concurrent_writers_leave_one_whole_file_and_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "state" / "sync.json"
    bodies = [bytes([65 + i]) * 200_000 for i in range(8)]
    errors: list[BaseException] = []

    def write(body: bytes) -> None:
        try:
            for _ in range(20):
                replace_file(target, body)
        except BaseException as exc:  # a shared temporary name fails here (renamed away by another)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.read_bytes() in bodies
    assert [p.name for p in target.parent.iterdir()] == ["sync.json"]


def test_a_failed_write_keeps_the_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "claim.json"
    replace_file(target, b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("ferry.files.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        replace_file(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["claim.json"]
