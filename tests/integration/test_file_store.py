"""The filesystem FileStore when a delete races a write (a job deleted while a log comes in)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_adapters.files import FilesystemStore
from farm_domain.errors import NotFound, WrittenAway


def test_a_folder_deleted_while_a_file_is_written_into_it_keeps_nothing(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, 10**6)
    store.write("logs/7/1/a.csv", [b"old"], 100)

    def text() -> Iterator[bytes]:
        yield b"first "
        store.delete("logs/7")
        yield b"last"

    with pytest.raises(WrittenAway) as raised:
        store.write("logs/7/1/a.csv", text(), 100)
    assert isinstance(raised.value, NotFound)
    assert not (tmp_path / "logs" / "7").exists()
    assert store.read("logs/7/1/a.csv") is None


def test_a_folder_deleted_before_the_file_is_opened_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FilesystemStore(tmp_path, 10**6)
    real = tempfile.mkstemp

    def deleted_first(**kwargs: object) -> tuple[int, str]:
        store.delete("logs/7")
        return real(**kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr("farm_adapters.files.tempfile.mkstemp", deleted_first)
    with pytest.raises(WrittenAway):
        store.write("logs/7/1/a.csv", [b"text"], 100)
    assert not (tmp_path / "logs" / "7").exists()
