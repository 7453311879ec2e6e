"""The filesystem FileStore when a delete races a write (a job deleted while a log comes in)."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_adapters.files import FilesystemStore
from farm_domain.errors import LogGap, NotFound, StorageFull, TooLarge, WrittenAway


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


def test_appends_add_each_byte_once_and_refuse_gaps(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, 10**6)
    assert store.append("logs/7/1/a.csv", 0, b"", 100) == 0
    assert store.append("logs/7/1/a.csv", 0, b"abcd", 100) == 4
    assert store.append("logs/7/1/a.csv", 0, b"abcd", 100) == 4  # sent again
    assert store.append("logs/7/1/a.csv", 2, b"cdef", 100) == 6  # overlapping: the rest only
    with pytest.raises(LogGap) as gap:
        store.append("logs/7/1/a.csv", 8, b"ij", 100)
    assert gap.value.offset == 6
    with pytest.raises(TooLarge):
        store.append("logs/7/1/a.csv", 6, b"x" * 95, 100)
    chunks = store.read("logs/7/1/a.csv", 2)
    assert chunks is not None and b"".join(chunks) == b"cdef"


def test_concurrent_appends_of_one_chunk_store_it_once(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, 10**6)
    store.append("logs/7/1/a.csv", 0, b"head\n", 1000)
    start = threading.Barrier(8)
    sizes: list[int] = []

    def send() -> None:
        start.wait()
        sizes.append(store.append("logs/7/1/a.csv", 5, b"line\n" * 10, 1000))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sizes == [55] * 8
    assert (tmp_path / "logs/7/1/a.csv").read_bytes() == b"head\n" + b"line\n" * 10


def test_appends_count_the_budget_with_what_other_writes_and_deletes_did(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, 20)
    store.append("logs/1/1/a.csv", 0, b"x" * 10, 100)
    store.write("updates/a.zip", [b"z" * 8], 100)  # counted at once, within the recount time
    with pytest.raises(StorageFull):
        store.append("logs/1/1/a.csv", 10, b"xxx", 100)
    store.delete("updates")  # room again at once
    assert store.append("logs/1/1/a.csv", 10, b"xxx", 100) == 13
    other = FilesystemStore(tmp_path, 20)  # another worker's process
    other.write("updates/b.zip", [b"z" * 7], 100)
    assert store.append("logs/1/1/a.csv", 13, b"y", 100) == 14  # not seen yet: counted...
    with pytest.raises(StorageFull):  # ... once the count is walked again
        FilesystemStore(tmp_path, 20).append("logs/1/1/a.csv", 14, b"y", 100)
