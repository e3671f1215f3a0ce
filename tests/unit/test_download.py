"""Downloads against a real HTTP server on 127.0.0.1, scripted request by request.

The server serves files written under ``tmp_path`` with an ETag derived from their content, honours
conditional and Range requests like a real static file server, and can be told, for its next
requests, to answer with an error status, to cut the body half-way or to stall. What is asserted is
what the server saw (headers, statuses, bytes sent) and what ended up on disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import socket
import threading
import time
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from observatoire.sources.download import (
    DownloadError,
    download,
    fetch,
    validate_sirene_csv,
    validate_sirene_zip,
)
from observatoire.sources.layouts import UNITE_LEGALE_V3_11_NAF25

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sirene"
MEMBER = "StockUniteLegale_utf8.csv"
ZIP_NAME = "StockUniteLegale_utf8.zip"
LAST_MODIFIED = "Mon, 01 Jun 2026 03:00:00 GMT"
# Two real rows from tests/fixtures/sirene (2026 stock), then a synthetic association whose name
# holds a comma, so that the CSV is quoted the way INSEE quotes it (only when needed).
ROWS = (
    "016750697,O,,1967-01-01,,,,,,,,,,31,2023,2025-12-06T05:25:38,7,ETI,2023,2022-10-01,A,,,"
    "ETS J VIRLY S A,,,,5710,77.39Z,NAFRev2,00050,N,,,77.39Y\n"
    "017051186,O,,1970-01-01,,,,,,,,,,21,2023,2026-02-17T10:53:59,8,PME,2023,2025-12-15,A,,,"
    "PENNEQUIN INVEST,,,,5499,43.12B,NAFRev2,00066,N,,,66.30Y\n"
    "775672272,O,,1901-07-01,,,,,,,,,W751000001,NN,,2026-01-05T10:00:00,3,PME,2023,2008-01-01,A,,,"
    '"ASSOCIATION DES AMIS, DU QUARTIER",,,,9220,94.99Z,NAFRev2,00019,O,,N,94.99Y\n'
)


def sirene_zip(
    header: tuple[str, ...] = UNITE_LEGALE_V3_11_NAF25,
    rows: str = ROWS,
    *,
    bom: bool = False,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    text = ("\ufeff" if bom else "") + ",".join(header) + "\n" + rows
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr(MEMBER, text.encode("utf-8"))
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Scriptable server
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """Answer with this status (and headers) instead of the file."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cut:
    """Announce the full Content-Length, send ``fraction`` of the body, close the connection.

    ``then_publish`` replaces the served file right after the cut (file changed mid-download).
    """

    fraction: float = 0.5
    then_publish: bytes | None = None


@dataclass(frozen=True)
class Stall:
    """Send ``fraction`` of the body, then go silent for ``seconds`` (client read timeout)."""

    fraction: float = 0.5
    seconds: float = 1.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]  # lower-cased names
    status: int = 0
    body_bytes: int = 0


class SireneServer:
    """State shared by the handler threads: files, the script of behaviours, the request log."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.script: deque[Status | Cut | Stall] = deque()
        self.seen: list[Seen] = []
        self.ranges = True
        self.last_modified = LAST_MODIFIED
        self.base_url = ""

    def publish(self, data: bytes, name: str = ZIP_NAME) -> bytes:
        (self.root / name).write_bytes(data)
        return data

    def url(self, name: str = ZIP_NAME) -> str:
        return f"{self.base_url}/{name}"

    def then(self, *behaviours: Status | Cut | Stall) -> None:
        self.script.extend(behaviours)

    def etag(self, data: bytes) -> str:
        return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5
    app: SireneServer  # set on the subclass built by the fixture

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _simple(self, seen: Seen, code: int, headers: dict[str, str] | None = None) -> None:
        body = f"{code}\n".encode()
        seen.status = code  # recorded before sending: the client may finish before we return
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        app = self.app
        seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
        app.seen.append(seen)
        behaviour = app.script.popleft() if app.script else None
        if isinstance(behaviour, Status):
            self._simple(seen, behaviour.code, behaviour.headers)
            return
        file = app.root / self.path.lstrip("/")
        if not file.is_file():
            self._simple(seen, 404)
            return
        data = file.read_bytes()
        etag = app.etag(data)
        h = seen.headers

        if "if-none-match" in h:  # RFC 9110: If-None-Match wins over If-Modified-Since
            not_modified = etag in [t.strip() for t in h["if-none-match"].split(",")]
        else:
            not_modified = h.get("if-modified-since") == app.last_modified
        if not_modified:
            seen.status = 304
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return

        start, status = 0, 200
        rng = h.get("range", "")
        wants_range = app.ranges and rng.startswith("bytes=") and rng.endswith("-")
        # If-Range: serve the range only if the file is still the one the client started.
        if wants_range and h.get("if-range") in (None, etag, app.last_modified):
            start, status = int(rng[len("bytes=") : -1]), 206
            if start >= len(data):
                self._simple(seen, 416, {"Content-Range": f"bytes */{len(data)}"})
                return
        payload = data[start:]
        cut = isinstance(behaviour, Cut | Stall)
        seen.status = status
        seen.body_bytes = int(len(payload) * behaviour.fraction) if cut else len(payload)

        self.send_response(status)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", app.last_modified)
        if app.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()

        if isinstance(behaviour, Cut | Stall):
            self.wfile.write(payload[: seen.body_bytes])
            self.wfile.flush()
            self.close_connection = True
            if isinstance(behaviour, Stall):
                time.sleep(behaviour.seconds)
            elif behaviour.then_publish is not None:
                app.publish(behaviour.then_publish, file.name)
            return
        self.wfile.write(payload)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests honours HTTP(S)_PROXY: make sure 127.0.0.1 is never sent through a proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SireneServer]:
    root = tmp_path / "served"
    root.mkdir()
    app = SireneServer(root)
    handler = type("Handler", (_Handler,), {"app": app})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    app.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield app
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fast(sleeps: list[float]) -> dict:
    """Keyword arguments that keep the tests quick: backoff recorded, not waited for."""
    return {"sleep": sleeps.append, "timeout": 5.0, "backoff": 0.5, "chunk_size": 256}


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "sources" / ZIP_NAME


def sidecar(dest: Path) -> dict:
    return json.loads(dest.with_name(dest.name + ".http.json").read_text(encoding="utf-8"))


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


VALIDATE = validate_sirene_zip("unites_legales")


# --------------------------------------------------------------------------------------------
# Conditional requests
# --------------------------------------------------------------------------------------------


def test_first_download_writes_file_and_sidecar(server: SireneServer, dest: Path, fast: dict):
    body = server.publish(sirene_zip())

    result = download(server.url(), dest, validate=VALIDATE, **fast)

    assert dest.read_bytes() == body
    assert result.downloaded is True
    assert result.path == dest
    assert result.size == len(body)
    assert result.attempts == 1
    assert result.etag == server.etag(body)
    assert result.last_modified == LAST_MODIFIED
    meta = sidecar(dest)
    assert meta["url"] == server.url()
    assert meta["etag"] == server.etag(body)
    assert meta["last_modified"] == LAST_MODIFIED
    assert meta["size"] == len(body)
    assert meta["downloaded_at"].endswith("+00:00")
    assert files_in(dest.parent) == {ZIP_NAME, ZIP_NAME + ".http.json"}
    first = server.seen[0].headers
    assert "if-none-match" not in first and "range" not in first
    assert first["accept-encoding"] == "identity"


def test_unchanged_file_is_not_downloaded_again(server: SireneServer, dest: Path, fast: dict):
    body = server.publish(sirene_zip())
    download(server.url(), dest, validate=VALIDATE, **fast)
    mtime = dest.stat().st_mtime_ns

    result = download(server.url(), dest, validate=VALIDATE, **fast)

    assert len(server.seen) == 2
    second = server.seen[1]
    assert second.headers["if-none-match"] == server.etag(body)
    assert second.headers["if-modified-since"] == LAST_MODIFIED
    assert second.status == 304
    assert second.body_bytes == 0
    assert result.downloaded is False
    assert result.attempts == 1
    assert result.etag == server.etag(body)
    assert dest.read_bytes() == body
    assert dest.stat().st_mtime_ns == mtime
    assert files_in(dest.parent) == {ZIP_NAME, ZIP_NAME + ".http.json"}


def test_changed_file_is_downloaded_again(server: SireneServer, dest: Path, fast: dict):
    old = server.publish(sirene_zip())
    download(server.url(), dest, validate=VALIDATE, **fast)
    new = server.publish(sirene_zip(rows=ROWS + ROWS))

    result = download(server.url(), dest, validate=VALIDATE, **fast)

    assert server.seen[1].headers["if-none-match"] == server.etag(old)
    assert server.seen[1].status == 200
    assert server.seen[1].body_bytes == len(new)
    assert result.downloaded is True
    assert dest.read_bytes() == new
    assert sidecar(dest)["etag"] == server.etag(new) == result.etag
    assert sidecar(dest)["size"] == len(new)


def test_locally_altered_file_gets_no_conditional_request(
    server: SireneServer, dest: Path, fast: dict
):
    body = server.publish(sirene_zip())
    download(server.url(), dest, **fast)
    dest.write_bytes(body[:-10])  # truncated by hand: the sidecar no longer describes it

    result = download(server.url(), dest, **fast)

    assert "if-none-match" not in server.seen[1].headers
    assert "if-modified-since" not in server.seen[1].headers
    assert result.downloaded is True
    assert dest.read_bytes() == body


def test_sidecar_for_another_url_is_ignored(server: SireneServer, dest: Path, fast: dict):
    server.publish(sirene_zip())
    other = server.publish(sirene_zip(rows=ROWS + ROWS), name="autre.zip")
    download(server.url(), dest, **fast)

    result = download(server.url("autre.zip"), dest, **fast)

    assert "if-none-match" not in server.seen[1].headers
    assert result.downloaded is True
    assert dest.read_bytes() == other
    assert sidecar(dest)["url"] == server.url("autre.zip")


# --------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------


def test_503_then_success(server: SireneServer, dest: Path, fast: dict, sleeps: list[float]):
    body = server.publish(sirene_zip())
    server.then(Status(503))

    result = download(server.url(), dest, validate=VALIDATE, **fast)

    assert [s.status for s in server.seen] == [503, 200]
    assert result.attempts == 2
    assert dest.read_bytes() == body
    assert len(sleeps) == 1
    assert 0.5 <= sleeps[0] <= 0.55  # backoff plus at most 10 % jitter


def test_backoff_grows_exponentially_and_is_capped(
    server: SireneServer, dest: Path, fast: dict, sleeps: list[float]
):
    body = server.publish(sirene_zip())
    server.then(Status(500), Status(502), Status(503), Status(504))

    result = download(server.url(), dest, **{**fast, "backoff": 1.0, "max_backoff": 5.0})

    assert result.attempts == 5
    assert dest.read_bytes() == body
    assert [round(s) for s in sleeps[:3]] == [1, 2, 4]
    assert sleeps[3] == 5.0


def test_burst_of_429_honours_retry_after(
    server: SireneServer, dest: Path, fast: dict, sleeps: list[float]
):
    body = server.publish(sirene_zip())
    server.then(
        Status(429, {"Retry-After": "7"}),
        Status(429, {"Retry-After": "3"}),
        Status(429, {"Retry-After": "120"}),
    )

    result = download(server.url(), dest, validate=VALIDATE, **{**fast, "max_backoff": 30.0})

    assert [s.status for s in server.seen] == [429, 429, 429, 200]
    assert sleeps == [7.0, 3.0, 30.0]  # Retry-After as given, capped by max_backoff
    assert result.attempts == 4
    assert dest.read_bytes() == body


def test_retries_exhausted_then_a_later_run_succeeds(
    server: SireneServer, dest: Path, fast: dict, sleeps: list[float]
):
    body = server.publish(sirene_zip())
    server.then(Status(503), Status(503), Status(503))

    with pytest.raises(DownloadError) as info:
        download(server.url(), dest, validate=VALIDATE, max_retries=2, **fast)

    message = str(info.value)
    assert server.url() in message
    assert "503" in message
    assert "3 tentatives" in message
    assert info.value.attempts == 3 and info.value.status == 503
    assert len(server.seen) == 3
    assert len(sleeps) == 2
    assert not dest.exists()
    assert files_in(dest.parent) == set()

    result = download(server.url(), dest, validate=VALIDATE, max_retries=2, **fast)

    assert result.downloaded is True
    assert dest.read_bytes() == body
    assert files_in(dest.parent) == {ZIP_NAME, ZIP_NAME + ".http.json"}


def test_unreachable_server_raises_after_retries(dest: Path, fast: dict, sleeps: list[float]):
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{ZIP_NAME}"

    with pytest.raises(DownloadError) as info:
        download(url, dest, max_retries=1, **fast)

    assert url in str(info.value)
    assert "ConnectionError" in str(info.value)
    assert info.value.attempts == 2
    assert len(sleeps) == 1
    assert not dest.exists()


def test_404_is_not_retried(server: SireneServer, dest: Path, fast: dict, sleeps: list[float]):
    with pytest.raises(DownloadError) as info:
        download(server.url("StockInexistant.zip"), dest, validate=VALIDATE, **fast)

    assert "404" in str(info.value)
    assert "non réessayée, 1 tentative)" in str(info.value)
    assert server.url("StockInexistant.zip") in str(info.value)
    assert info.value.status == 404
    assert len(server.seen) == 1
    assert sleeps == []
    assert not dest.exists()
    assert files_in(dest.parent) == set()


def test_404_after_a_503_reports_both_attempts(
    server: SireneServer, dest: Path, fast: dict, sleeps: list[float]
):
    server.then(Status(503), Status(404))

    with pytest.raises(DownloadError, match="2 tentatives") as info:
        download(server.url(), dest, **fast)

    assert info.value.status == 404
    assert [s.status for s in server.seen] == [503, 404]
    assert len(sleeps) == 1


# --------------------------------------------------------------------------------------------
# Cut and stalled transfers
# --------------------------------------------------------------------------------------------


def big_body() -> bytes:
    """A zip large enough to be cut in the middle of the compressed data (stored, ~40 kB)."""
    return sirene_zip(rows=ROWS * 100, compression=zipfile.ZIP_STORED)


def test_cut_transfer_resumes_with_range(server: SireneServer, dest: Path, fast: dict):
    body = server.publish(big_body())
    server.then(Cut(0.5))

    result = download(server.url(), dest, validate=VALIDATE, **fast)

    half = len(body) // 2
    first, second = server.seen
    assert first.status == 200 and first.body_bytes == half
    # urllib3 drops the bytes of the read that hit the cut: resume where the disk data ends,
    # i.e. at most one chunk before the cut.
    resumed_at = int(second.headers["range"].removeprefix("bytes=").removesuffix("-"))
    assert half - fast["chunk_size"] < resumed_at <= half
    assert second.headers["if-range"] == server.etag(body)
    assert "if-none-match" not in second.headers
    assert second.status == 206
    assert second.body_bytes == len(body) - resumed_at
    assert dest.read_bytes() == body
    assert result.attempts == 2
    assert files_in(dest.parent) == {ZIP_NAME, ZIP_NAME + ".http.json"}


def test_cut_twice_resumes_twice(server: SireneServer, dest: Path, fast: dict):
    body = server.publish(big_body())
    server.then(Cut(0.5), Cut(0.5))

    download(server.url(), dest, validate=VALIDATE, **fast)

    ranges = [s.headers.get("range") for s in server.seen]
    assert ranges[0] is None
    first_resume = int(ranges[1].removeprefix("bytes=").removesuffix("-"))
    second_resume = int(ranges[2].removeprefix("bytes=").removesuffix("-"))
    assert 0 < first_resume < second_resume < len(body)
    assert [s.status for s in server.seen] == [200, 206, 206]
    assert server.seen[2].body_bytes == len(body) - second_resume
    assert dest.read_bytes() == body


def test_cut_transfer_without_range_support_restarts(server: SireneServer, dest: Path, fast: dict):
    server.ranges = False
    body = server.publish(big_body())
    server.then(Cut(0.5))

    result = download(server.url(), dest, validate=VALIDATE, **fast)

    first, second = server.seen
    assert "accept-ranges" not in first.headers
    assert "range" not in second.headers
    assert second.status == 200
    assert second.body_bytes == len(body)
    assert dest.read_bytes() == body
    assert result.attempts == 2


def test_file_changed_during_resume_restarts_from_zero(
    server: SireneServer, dest: Path, fast: dict
):
    old = server.publish(big_body())
    new = sirene_zip(rows=ROWS * 120, compression=zipfile.ZIP_STORED)
    server.then(Cut(0.5, then_publish=new))

    result = download(server.url(), dest, validate=VALIDATE, **fast)

    second = server.seen[1]
    assert second.headers["if-range"] == server.etag(old)
    assert second.status == 200  # If-Range did not match: the server sent the whole new file
    assert dest.read_bytes() == new
    assert result.etag == server.etag(new)


def test_stalled_transfer_times_out_and_resumes(server: SireneServer, dest: Path, fast: dict):
    body = server.publish(big_body())
    server.then(Stall(0.5, seconds=1.0))

    result = download(server.url(), dest, validate=VALIDATE, **{**fast, "timeout": 0.3})

    assert server.seen[1].headers["range"].startswith("bytes=")
    assert server.seen[1].status == 206
    assert dest.read_bytes() == body
    assert result.attempts == 2


def test_stale_part_file_from_a_crashed_run_is_discarded(
    server: SireneServer, dest: Path, fast: dict
):
    body = server.publish(sirene_zip())
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + ".part").write_bytes(b"garbage from a killed process" * 100)

    download(server.url(), dest, validate=VALIDATE, **fast)

    assert "range" not in server.seen[0].headers
    assert dest.read_bytes() == body
    assert files_in(dest.parent) == {ZIP_NAME, ZIP_NAME + ".http.json"}


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def corrupt(data: bytes) -> bytes:
    """Flip bytes in the middle of the member's stored data, far from the header line."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(MEMBER)
    # local header: 30 bytes + file name + extra field, then the data
    data_start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = data_start + info.compress_size // 2
    damaged = bytearray(data)
    for i in range(middle, middle + 4):
        damaged[i] ^= 0xFF
    return bytes(damaged)


def test_corrupt_zip_is_refused_and_previous_file_kept(
    server: SireneServer, dest: Path, fast: dict
):
    good = server.publish(sirene_zip())
    download(server.url(), dest, validate=VALIDATE, **fast)
    meta_before = sidecar(dest)
    bad = server.publish(corrupt(big_body()))
    assert len(bad) == len(big_body())

    with pytest.raises(DownloadError) as info:
        download(server.url(), dest, validate=VALIDATE, **fast)

    message = str(info.value)
    assert "CRC" in message
    assert MEMBER in message
    assert server.url() in message
    assert server.seen[1].status == 200 and server.seen[1].body_bytes == len(bad)
    assert len(server.seen) == 2  # a damaged file is refused, not downloaded over and over
    assert dest.read_bytes() == good
    assert sidecar(dest) == meta_before
    assert files_in(dest.parent) == {ZIP_NAME, ZIP_NAME + ".http.json"}


def test_damaged_deflate_stream_is_refused_naming_the_member(tmp_path: Path):
    data = bytearray(sirene_zip(rows=ROWS * 50))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo(MEMBER)
    start = info.header_offset + 30 + len(MEMBER) + len(info.extra)
    for i in range(start + 20, start + info.compress_size - 20):
        data[i] ^= 0x55
    path = tmp_path / ZIP_NAME
    path.write_bytes(bytes(data))

    with pytest.raises(DownloadError) as info_err:
        VALIDATE(path)

    assert MEMBER in str(info_err.value)
    assert "CRC" in str(info_err.value)


def test_unknown_header_is_refused(server: SireneServer, dest: Path, fast: dict):
    server.publish(sirene_zip(header=(*UNITE_LEGALE_V3_11_NAF25, "colonneInconnueUniteLegale")))

    with pytest.raises(DownloadError) as info:
        download(server.url(), dest, validate=VALIDATE, **fast)

    message = str(info.value)
    assert "disposition" in message and "non reconnu" in message
    assert "colonneInconnueUniteLegale" in message
    assert MEMBER in message
    assert not dest.exists()
    assert files_in(dest.parent) == set()


def test_establishment_file_where_legal_units_are_expected_is_refused(tmp_path: Path):
    path = tmp_path / "StockEtablissement_utf8.csv"
    path.write_bytes((FIXTURES / "sirene_stock_etablissement_sample_2020_v3_9.csv").read_bytes())

    with pytest.raises(DownloadError, match="etablissements"):
        validate_sirene_csv("unites_legales")(path)


def test_zip_validator_accepts_bom_and_rejects_bad_archives(tmp_path: Path):
    ok = tmp_path / "ok.zip"
    ok.write_bytes(sirene_zip(bom=True))
    VALIDATE(ok)  # no exception

    not_zip = tmp_path / "page.zip"
    not_zip.write_bytes(b"<html>Maintenance en cours</html>")
    with pytest.raises(DownloadError, match="zip illisible"):
        VALIDATE(not_zip)

    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.csv", ",".join(UNITE_LEGALE_V3_11_NAF25) + "\n")
        zf.writestr("b.csv", ",".join(UNITE_LEGALE_V3_11_NAF25) + "\n")
    with pytest.raises(DownloadError, match="exactement un fichier .csv"):
        VALIDATE(two)


def test_validator_for_unknown_kind_fails_at_once():
    with pytest.raises(ValueError, match="entreprises"):
        validate_sirene_zip("entreprises")


def test_any_validator_error_becomes_download_error(server: SireneServer, dest: Path, fast: dict):
    server.publish(b"not checked by zip")

    def refuse(path: Path) -> None:
        raise ValueError("trop petit")

    with pytest.raises(DownloadError, match="trop petit"):
        download(server.url(), dest, validate=refuse, **fast)
    assert files_in(dest.parent) == set()


# --------------------------------------------------------------------------------------------
# fetch, progress
# --------------------------------------------------------------------------------------------


def test_fetch_url_downloads_into_dest_dir(server: SireneServer, tmp_path: Path, fast: dict):
    body = server.publish(sirene_zip())

    result = fetch(server.url(), tmp_path / "inbox", validate=VALIDATE, **fast)

    assert result.path == tmp_path / "inbox" / ZIP_NAME
    assert result.downloaded is True
    assert result.path.read_bytes() == body


def test_fetch_local_zip_is_validated_in_place(tmp_path: Path):
    local = tmp_path / "depot" / ZIP_NAME
    local.parent.mkdir()
    local.write_bytes(sirene_zip())
    dest_dir = tmp_path / "inbox"

    result = fetch(str(local), dest_dir, validate=VALIDATE)

    assert result.path == local
    assert result.downloaded is False
    assert result.url is None
    assert result.size == local.stat().st_size
    assert result.attempts == 0
    assert not dest_dir.exists()  # used in place, not copied


def test_fetch_local_csv_fixture(tmp_path: Path):
    result = fetch(
        str(FIXTURES / "sirene_stock_unite_legale_sample_2026.csv"),
        tmp_path,
        validate=validate_sirene_csv("unites_legales"),
    )
    assert result.downloaded is False
    fetch(
        str(FIXTURES / "sirene_stock_etablissement_sample_2020_v3_9.csv"),
        tmp_path,
        validate=validate_sirene_csv("etablissements"),
    )


def test_fetch_local_file_with_bad_header_is_refused(tmp_path: Path):
    local = tmp_path / ZIP_NAME
    local.write_bytes(sirene_zip(header=UNITE_LEGALE_V3_11_NAF25[:-1] + ("naf25",)))

    with pytest.raises(DownloadError, match="non reconnu"):
        fetch(str(local), tmp_path / "inbox", validate=VALIDATE)


def test_fetch_missing_local_file(tmp_path: Path):
    missing = tmp_path / "nulle_part" / ZIP_NAME
    with pytest.raises(FileNotFoundError, match="nulle_part"):
        fetch(str(missing), tmp_path, validate=VALIDATE)


def test_progress_callback_and_log(
    server: SireneServer, dest: Path, fast: dict, caplog: pytest.LogCaptureFixture
):
    body = server.publish(big_body())
    calls: list[tuple[int, int | None]] = []

    with caplog.at_level(logging.INFO, logger="observatoire.sources.download"):
        download(server.url(), dest, progress=lambda d, t: calls.append((d, t)), **fast)

    assert calls[-1] == (len(body), len(body))
    assert all(t == len(body) for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(done) >= 10
    lines = [r.getMessage() for r in caplog.records if r.name == "observatoire.sources.download"]
    percents = [line for line in lines if "%" in line and "Mo/s" in line]
    # one line per tenth, not one per chunk
    assert 5 <= len(percents) <= 11
    assert any("(100 %)" in line for line in percents)


@pytest.mark.parametrize("ranges", [True, False])
def test_progress_after_a_cut(server: SireneServer, dest: Path, fast: dict, ranges: bool):
    server.ranges = ranges
    body = server.publish(big_body())
    server.then(Cut(0.5))
    calls: list[tuple[int, int | None]] = []

    download(server.url(), dest, progress=lambda d, t: calls.append((d, t)), **fast)

    assert calls[-1] == (len(body), len(body))
    done = [d for d, _ in calls]
    drops = [b for a, b in zip(done, done[1:], strict=False) if b <= a]
    if ranges:
        assert drops == []  # resumed: the count goes on from the bytes already on disk
    else:
        assert drops == [fast["chunk_size"]]  # restarted: the count starts again from zero
