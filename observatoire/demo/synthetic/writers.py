"""CSV lines in INSEE's dialect, and the sinks that hash and compress them in the background.

Writing is the slow half of a national run: each file has a thread that deflates and hashes
while the next chunk is drawn (zlib and hashlib release the GIL), the text waiting for it is
capped (`_MAX_PENDING_BYTES`) so that memory stays bounded, and lines are built in slices
(`_SLICE_ROWS`) so that a chunk's text never sits in memory next to all its columns. Neither
setting changes the bytes written; tests lower both to check that.
"""

from __future__ import annotations

import hashlib
import queue
import stat
import threading
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Rows joined into lines at a time, and bytes of text waiting for a sink's thread at most.
_SLICE_ROWS = 250_000
_MAX_PENDING_BYTES = 192 * 1024 * 1024


def _join_lines(cols: dict[str, Any], header: tuple[str, ...]) -> pa.StringArray:
    """One CSV line per row, `\\n`-terminated, in header order (values already escaped)."""
    missing = set(header) - set(cols)
    extra = set(cols) - set(header)
    if missing or extra:
        raise AssertionError(f"columns mismatch: missing {missing}, extra {extra}")
    values: list[Any] = []
    run = 0  # consecutive constant empty columns, merged into one value of commas
    for name in header[:-1]:
        value = cols[name]
        if isinstance(value, pa.Scalar) and value.as_py() == "":
            run += 1
            continue
        if run:
            values.append(pa.scalar("," * (run - 1)))
            run = 0
        values.append(value)
    if run:
        values.append(pa.scalar("," * (run - 1)))
    values.append(
        pc.binary_join_element_wise(cols[header[-1]], pa.scalar("\n"), "", null_handling="replace")
    )
    return pc.binary_join_element_wise(*values, ",", null_handling="replace")


def _line_bytes(lines: pa.StringArray) -> memoryview:
    """The concatenated text of all lines, without copying."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    lo = int(offsets[lines.offset])
    hi = int(offsets[lines.offset + len(lines)])
    return memoryview(lines.buffers()[2])[lo:hi]


def _write_slices(sink: _Sink, cols: dict[str, Any], n: int, header: tuple[str, ...]) -> None:
    for lo in range(0, n, _SLICE_ROWS):
        length = min(_SLICE_ROWS, n - lo)
        part = {k: v if isinstance(v, pa.Scalar) else v.slice(lo, length) for k, v in cols.items()}
        lines = _join_lines(part, header)
        sink.write([_line_bytes(lines)], len(lines))


class _Sink:
    """One output file, written by a background thread so deflate overlaps generation.

    zlib and hashlib release the GIL on large buffers, so on 2 cores the compression of a chunk
    runs while the next one is generated. The text waiting to be written is capped in bytes
    (`_MAX_PENDING_BYTES`): the producer blocks beyond it, which bounds memory.
    """

    def __init__(
        self, path: Path, member: str | None, date_time: tuple[int, ...], compresslevel: int
    ) -> None:
        self.path = path
        self.lines = 0
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[tuple[list[Any], int] | None] = queue.Queue()
        self._pending = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._zip: zipfile.ZipFile | None = None
        self._fh: BinaryIO
        if member is None:
            self._fh = path.open("wb")
        else:
            self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
            info = zipfile.ZipInfo(member, date_time=date_time)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = compresslevel  # type: ignore[attr-defined]
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3
            self._fh = self._zip.open(info, "w", force_zip64=True)  # type: ignore[assignment]
        self._thread = threading.Thread(target=self._run, name=f"sink-{path.name}", daemon=True)
        self._thread.start()

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            buffers, size = item
            del item
            try:
                if self._error is None:  # after an error, keep draining: never block the producer
                    for buf in buffers:
                        self._hash.update(buf)
                        self._fh.write(buf)
            except BaseException as exc:  # re-raised in the producer thread
                self._error = exc
            finally:
                del buffers
                with self._cond:
                    self._pending -= size
                    self._cond.notify_all()

    def write(self, buffers: list[Any], n_lines: int) -> None:
        if self._error is not None:
            raise self._error
        self.lines += n_lines
        size = sum(memoryview(b).nbytes for b in buffers)
        with self._cond:
            while self._pending and self._pending + size > _MAX_PENDING_BYTES:
                self._cond.wait()
            self._pending += size
        self._queue.put((buffers, size))

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._fh.close()
        if self._zip is not None:
            self._zip.close()
        if self._error is not None:
            raise self._error
