"""Download of SIRENE stock files, safe to interrupt and to re-run.

The national stock files weigh about 2 GB zipped and are republished once a month. A monthly
refresh must therefore (1) not fetch them again when they have not changed, (2) survive the
connection cuts and rate limits that a transfer of several minutes meets, and (3) never leave a
half-written or damaged archive where the next step of the pipeline would read it. Hence:

* the body is streamed to ``<dest>.part`` in the same directory (same file system, so the final
  ``os.replace`` is atomic), checked (length, then the caller's validation, e.g. zip CRC and
  SIRENE header), and only then moved onto ``dest``;
* a sidecar ``<dest>.http.json`` remembers the ETag / Last-Modified of the file on disk so the
  next run asks the server with ``If-None-Match`` / ``If-Modified-Since`` and gets a 304;
* transient failures (429, 5xx, cut or stalled transfers) are retried with capped exponential
  backoff, resuming with a ``Range`` request when the server allows it.

Local files go through :func:`fetch` and the same validation, so the rest of the pipeline has one
entry point whether the source is an INSEE URL or a file dropped by hand.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from observatoire.sources import sirene
from observatoire.sources.layouts import LAYOUTS

__all__ = [
    "DownloadError",
    "DownloadResult",
    "download",
    "fetch",
    "validate_sirene_csv",
    "validate_sirene_zip",
]

logger = logging.getLogger("observatoire.sources.download")

Validator = Callable[[Path], None]
Progress = Callable[[int, int | None], None]

_LOG_EVERY_SECONDS = 5.0
# A header line longer than this is not a SIRENE header: refuse instead of reading gigabytes.
_KINDS = frozenset(layout.kind for layout in LAYOUTS)


class DownloadError(RuntimeError):
    """A source could not be obtained, or what was obtained is not an acceptable file.

    One exception type for both cases so that callers (CLI, Dagster assets) catch one thing and
    show its message, which always names the URL or file and the reason.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True)
class DownloadResult:
    """What is now at ``path``, and whether this call had to transfer it."""

    path: Path
    downloaded: bool  # False on 304 Not Modified, and for local files
    url: str | None  # None for local files
    etag: str | None
    last_modified: str | None
    size: int
    attempts: int  # HTTP requests made; 0 for local files


# --------------------------------------------------------------------------------------------
# Validators
# --------------------------------------------------------------------------------------------


def _check_kind(kind: str) -> None:
    # Fail when the validator is built (at wiring time), not after a 2 GB download.
    if kind not in _KINDS:
        raise ValueError(f"type de fichier SIRENE inconnu : {kind!r} (attendu : {sorted(_KINDS)})")


def _check_header(kind: str, path: Path, fmt: str) -> None:
    """The layout check the ingestion itself runs, so both refuse exactly the same headers."""
    try:
        sirene.detect(kind, path, fmt)
    except sirene.SireneFileError as e:
        raise DownloadError(f"disposition (layout) SIRENE non reconnue : {e}") from e


def validate_sirene_zip(kind: str) -> Validator:
    """Build a validator for a zipped SIRENE stock file of ``kind``.

    Every member is decompressed once to check its CRC: a damaged archive must be refused here,
    where the previous good file is still in place, rather than half-way through a 40-million-row
    load. ``ZipFile.testzip()`` does this but lets ``zlib.error`` escape when the damage hits the
    deflate stream itself (and does not say which kind of damage it found), so the same loop is
    written out with both errors mapped to a message naming the member.
    """
    _check_kind(kind)

    def validate(path: Path) -> None:
        path = Path(path)
        try:
            with zipfile.ZipFile(path) as zf:
                members = [i for i in zf.infolist() if not i.is_dir()]
                csvs = [i for i in members if i.filename.lower().endswith(".csv")]
                if len(csvs) != 1:
                    names = ", ".join(i.filename for i in members) or "aucun membre"
                    raise DownloadError(
                        f"{path} : l'archive doit contenir exactement un fichier .csv, "
                        f"elle en contient {len(csvs)} ({names})"
                    )
                for info in members:
                    try:
                        with zf.open(info) as member:
                            while member.read(1 << 20):
                                pass
                    except zipfile.BadZipFile as e:
                        raise DownloadError(
                            f"{path} : erreur de CRC sur le membre {info.filename} "
                            f"— archive corrompue ({e})"
                        ) from e
                    except (zlib.error, EOFError) as e:
                        raise DownloadError(
                            f"{path} : données compressées corrompues dans le membre "
                            f"{info.filename}, contrôle CRC impossible ({e})"
                        ) from e
        except zipfile.BadZipFile as e:
            raise DownloadError(f"{path} : archive zip illisible ({e})") from e
        _check_header(kind, path, "zip")

    return validate


def validate_sirene_csv(kind: str) -> Validator:
    """Build a validator for an unzipped SIRENE stock CSV of ``kind`` (header check only).

    A plain CSV carries no checksum, so the header is all that can be checked cheaply; row-level
    problems are the cleaning layer's business.
    """
    _check_kind(kind)

    def validate(path: Path) -> None:
        _check_header(kind, Path(path), "csv")

    return validate


def _run_validate(validate: Validator, path: Path, context: str) -> None:
    # Custom validators may raise anything; callers should only have to catch DownloadError.
    try:
        validate(path)
    except DownloadError as e:
        raise DownloadError(f"{context} : fichier refusé — {e}", url=e.url) from e
    except Exception as e:
        raise DownloadError(f"{context} : fichier refusé — {path} : {type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


class _Final(Exception):
    """A failure that another attempt would not fix (4xx other than 429, protocol nonsense)."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _Retry(Exception):
    """A failure worth another attempt; ``restart`` discards the partial content."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        restart: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.restart = restart


@dataclass
class _Transfer:
    """What is known about the bytes already in ``<dest>.part``."""

    offset: int = 0
    total: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    accept_ranges: bool = False

    def if_range(self) -> str | None:
        # RFC 9110: If-Range needs a strong validator; a weak ETag cannot be used.
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


class _ProgressReporter:
    def __init__(self, url: str, total: int | None, start: int, callback: Progress | None) -> None:
        self.url = url
        self.total = total
        self.start = start
        self.callback = callback
        self.t0 = time.monotonic()
        self.last_log = self.t0
        self.last_tenth = self._tenth(start)

    def _tenth(self, done: int) -> int | None:
        return done * 10 // self.total if self.total else None

    def update(self, done: int) -> None:
        if self.callback is not None:
            self.callback(done, self.total)
        now = time.monotonic()
        tenth = self._tenth(done)
        new_tenth = tenth is not None and self.last_tenth is not None and tenth > self.last_tenth
        if not new_tenth and now - self.last_log < _LOG_EVERY_SECONDS:
            return
        self.last_log = now
        self.last_tenth = tenth
        elapsed = max(now - self.t0, 1e-6)
        rate = (done - self.start) / elapsed / 1e6
        if self.total:
            logger.info(
                "%s : %.1f / %.1f Mo (%d %%), %.1f Mo/s",
                self.url,
                done / 1e6,
                self.total / 1e6,
                done * 100 // self.total,
                rate,
            )
        else:
            logger.info("%s : %.1f Mo, %.1f Mo/s", self.url, done / 1e6, rate)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _parse_content_range(value: str | None) -> tuple[int, int | None] | None:
    # "bytes 100-199/200" -> (100, 200); "bytes 100-199/*" -> (100, None)
    if not value or not value.startswith("bytes "):
        return None
    try:
        span, _, total = value[len("bytes ") :].partition("/")
        start = int(span.split("-", 1)[0])
        return start, (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


def _backoff_delay(
    failures: int, retry_after: float | None, backoff: float, max_backoff: float
) -> float:
    if retry_after is not None:
        return min(retry_after, max_backoff)
    base = min(max_backoff, backoff * 2 ** (failures - 1))
    # A little jitter so that several workers cut at once do not all come back together.
    return min(max_backoff, base * (1 + 0.1 * random.random()))


def _attempts_text(n: int) -> str:
    return f"{n} tentative{'s' if n > 1 else ''}"


def _sidecar_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".http.json")


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _read_sidecar(url: str, dest: Path) -> dict | None:
    """The sidecar, if it describes the file on disk for this same URL."""
    sidecar = _sidecar_path(dest)
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        size = dest.stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("url") != url or meta.get("size") != size:
        # A file replaced or truncated by hand must not be declared up to date by the server.
        return None
    return meta


def _write_sidecar(dest: Path, meta: dict) -> None:
    sidecar = _sidecar_path(dest)
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, sidecar)


def _attempt(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    part: Path,
    state: _Transfer,
    *,
    ranged: bool,
    conditional: bool,
    timeout: float,
    chunk_size: int,
    progress: Progress | None,
) -> int:
    """One HTTP request; returns the final status (200/206 complete, or 304).

    Raises ``_Retry`` for transient failures and ``_Final`` for the others. ``state`` is
    updated as bytes land on disk, so after any exception it tells where to resume from.
    """
    with session.get(url, headers=headers, stream=True, timeout=timeout) as resp:
        status = resp.status_code
        what = f"HTTP {status} {resp.reason or ''}".rstrip()
        if status == 304:
            if conditional:
                return status
            raise _Final(f"{what} alors qu'aucune requête conditionnelle n'a été faite", status=304)
        if status == 429 or 500 <= status <= 599:
            raise _Retry(
                what,
                status=status,
                retry_after=_parse_retry_after(resp.headers.get("Retry-After")),
            )
        if status == 416 and ranged:
            raise _Retry(what, status=status, restart=True)
        if status == 206 and ranged:
            content_range = _parse_content_range(resp.headers.get("Content-Range"))
            if (
                content_range is None
                or content_range[0] != state.offset
                or (state.total is not None and content_range[1] not in (None, state.total))
            ):
                raise _Retry(
                    f"HTTP 206 avec Content-Range inattendu ({resp.headers.get('Content-Range')})",
                    status=status,
                    restart=True,
                )
            etag = resp.headers.get("ETag")
            if etag and state.etag and etag != state.etag:
                raise _Retry("le fichier a changé pendant la reprise", status=status, restart=True)
            mode = "ab"
        elif status == 200:
            # Either a first request, or the server ignored Range / If-Range (file changed,
            # no range support): in both cases the body is the whole file.
            state.offset = 0
            length = resp.headers.get("Content-Length")
            encoded = resp.headers.get("Content-Encoding", "identity").lower() != "identity"
            state.total = int(length) if length and length.isdigit() and not encoded else None
            state.etag = resp.headers.get("ETag")
            state.last_modified = resp.headers.get("Last-Modified")
            state.accept_ranges = resp.headers.get("Accept-Ranges", "").lower() == "bytes"
            mode = "wb"
        else:
            raise _Final(what, status=status)

        reporter = _ProgressReporter(url, state.total, state.offset, progress)
        with part.open(mode) as f:
            for chunk in resp.iter_content(chunk_size=chunk_size):
                f.write(chunk)
                state.offset += len(chunk)
                reporter.update(state.offset)
            f.flush()
            os.fsync(f.fileno())

    if state.total is not None and state.offset != state.total:
        raise _Retry(
            f"transfert incomplet : {state.offset} octets reçus sur {state.total} annoncés",
            status=status,
            restart=state.offset > state.total,
        )
    return status


def download(
    url: str,
    dest: Path,
    *,
    validate: Validator | None = None,
    max_retries: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    progress: Progress | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DownloadResult:
    """Make ``dest`` a complete, validated copy of ``url``, transferring only if it changed.

    ``max_retries`` counts retries after the first request (at most ``max_retries + 1`` requests);
    a resumed transfer counts as a retry. ``timeout`` applies to connecting and to each read, so a
    stalled transfer is retried instead of hanging. ``sleep`` is only there so that tests need
    not wait out the backoff.

    Whatever happens, an existing ``dest`` is either left untouched or atomically replaced by a
    complete and valid file, and no ``.part`` file is left behind.
    """
    if max_retries < 0:
        raise ValueError("max_retries doit être positif ou nul")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    # A .part from an interrupted run has no recorded validator: it cannot be resumed safely.
    part.unlink(missing_ok=True)

    previous = _read_sidecar(url, dest) if dest.exists() else None
    conditional_headers: dict[str, str] = {}
    if previous is not None:
        if previous.get("etag"):
            conditional_headers["If-None-Match"] = previous["etag"]
        if previous.get("last_modified"):
            conditional_headers["If-Modified-Since"] = previous["last_modified"]

    own_session = session is None
    http = session if session is not None else requests.Session()
    state = _Transfer()
    attempts = 0
    done = False
    logger.info("Téléchargement de %s vers %s", url, dest)
    try:
        while True:
            attempts += 1
            # Ask for identity encoding: byte counts must be comparable with Content-Length.
            headers = {"Accept-Encoding": "identity"}
            ranged = state.offset > 0 and state.accept_ranges
            conditional = False
            if ranged:
                headers["Range"] = f"bytes={state.offset}-"
                validator = state.if_range()
                if validator:
                    headers["If-Range"] = validator
            else:
                state.offset = 0
                if conditional_headers:
                    headers.update(conditional_headers)
                    conditional = True
            try:
                status = _attempt(
                    http,
                    url,
                    headers,
                    part,
                    state,
                    ranged=ranged,
                    conditional=conditional,
                    timeout=timeout,
                    chunk_size=chunk_size,
                    progress=progress,
                )
                break
            except _Retry as r:
                failure = r
            except (
                requests.ConnectionError,  # refused, reset, and read timeouts inside the body
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,  # body shorter than Content-Length
            ) as e:
                failure = _Retry(f"{type(e).__name__}: {e}")
            except (_Final, requests.RequestException) as e:  # bad URL, redirect loop...
                reason = e.reason if isinstance(e, _Final) else f"{type(e).__name__}: {e}"
                raise DownloadError(
                    f"Échec du téléchargement de {url} : {reason} (erreur non réessayée, "
                    f"{_attempts_text(attempts)})",
                    url=url,
                    status=e.status if isinstance(e, _Final) else None,
                    attempts=attempts,
                ) from e
            if failure.restart:
                state.offset = 0
            else:
                # Trust the disk, not the counter: only what reached the file can be resumed.
                state.offset = part.stat().st_size if part.exists() else 0
            if attempts > max_retries:
                raise DownloadError(
                    f"Échec du téléchargement de {url} après {_attempts_text(attempts)} ; "
                    f"dernière erreur : {failure.reason}",
                    url=url,
                    status=failure.status,
                    attempts=attempts,
                )
            delay = _backoff_delay(attempts, failure.retry_after, backoff, max_backoff)
            resume = (
                f", reprise à l'octet {state.offset}"
                if state.offset and state.accept_ranges
                else ""
            )
            logger.warning(
                "%s : tentative %d/%d échouée (%s)%s ; nouvel essai dans %.1f s",
                url,
                attempts,
                max_retries + 1,
                failure.reason,
                resume,
                delay,
            )
            sleep(delay)

        if status == 304:
            assert previous is not None
            logger.info("%s : inchangé depuis le dernier téléchargement (304)", url)
            done = True
            return DownloadResult(
                path=dest,
                downloaded=False,
                url=url,
                etag=previous.get("etag"),
                last_modified=previous.get("last_modified"),
                size=dest.stat().st_size,
                attempts=attempts,
            )

        if validate is not None:
            _run_validate(validate, part, context=url)
        size = part.stat().st_size
        # Drop the old sidecar first: if we die between the two steps, the next run simply
        # downloads again instead of trusting validators that describe another file.
        _sidecar_path(dest).unlink(missing_ok=True)
        os.replace(part, dest)
        _write_sidecar(
            dest,
            {
                "url": url,
                "etag": state.etag,
                "last_modified": state.last_modified,
                "size": size,
                "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        logger.info("%s : %d octets écrits dans %s (%d requêtes)", url, size, dest, attempts)
        done = True
        return DownloadResult(
            path=dest,
            downloaded=True,
            url=url,
            etag=state.etag,
            last_modified=state.last_modified,
            size=size,
            attempts=attempts,
        )
    finally:
        if not done:
            part.unlink(missing_ok=True)
        if own_session:
            http.close()


def fetch(
    source: str, dest_dir: Path, *, validate: Validator | None = None, **kw: Any
) -> DownloadResult:
    """Obtain a source given either as an http(s) URL or as a local file path.

    URLs are downloaded into ``dest_dir`` under the last segment of the URL path (keyword
    arguments go to :func:`download`); local files are used in place, not copied, but pass the
    same validation so a hand-dropped file cannot bypass the checks.
    """
    if source.startswith(("http://", "https://")):
        name = unquote(PurePosixPath(urlsplit(source).path).name)
        if not name:
            raise ValueError(f"{source} : l'URL ne se termine pas par un nom de fichier")
        return download(source, Path(dest_dir) / name, validate=validate, **kw)

    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Fichier source introuvable : {path} (ce n'est ni une URL http(s) ni un fichier "
            "local existant)"
        )
    if validate is not None:
        _run_validate(validate, path, context=str(path))
    return DownloadResult(
        path=path,
        downloaded=False,
        url=None,
        etag=None,
        last_modified=None,
        size=path.stat().st_size,
        attempts=0,
    )
