"""Progress of long work (reading, cleaning, indicators): rows done, rate, remaining time.

Why: a national refresh reads 42 M establishment rows for minutes, then cleans them and computes
the indicators; without a sign of life the data team cannot tell a slow read from a stuck one,
nor say when the month will be out. The same reports serve the terminal of `observatoire
refresh` and the run log of Dagster, so that a scheduled run is as readable as a manual one.

Use, from any layer (this module imports nothing of the project):

    from observatoire.core import progress

    with progress.task("Lecture des établissements", total=records, unit="lignes") as p:
        for batch in batches:  # a Polars frame, an Arrow record batch: ~100 k-1 M rows
            ...                 # read, clean, write the batch
            p.advance(len(batch))

    # the same, for an iterable of batches (each counted by `size`, `len` by default, after
    # the loop's body has handled it):
    for batch in progress.track(batches, "Nettoyage des établissements", total=rows):
        ...

`total` is what the work will reach when it is known (the records counted in the file); with
`None` the reports give the rows done and the rate, no percentage and no remaining time. It
may be set later (`p.total = n`) when the count arrives after the work has started. The
remaining time is the rows left at the average rate since the task began. `advance` costs a
lock, a clock reading and a comparison unless a report is due: call it per batch, not per row.
It may be called from several threads (a function Polars's streaming engine calls on each
batch runs in its workers).

Where the reports go:
- always, to `logging`: INFO records on the logger `observatoire.progress` (`LOGGER`), at most
  one per `interval` seconds per task, then a final one; the figures ride on the record as
  `record.progress` (a `Snapshot`). In a Dagster step, `forward_to(context.log)` (set by
  `pipelines/definitions.py` around every step) hands them to the run's log (event log, UI,
  console of `dagster dev`) and keeps them from the root logger meanwhile, so a console
  logging INFO does not print them a second time;
- to a display, when one is installed with `use(Reporter(sys.stderr))` (the CLI does it): on a
  terminal, one line redrawn in place (carriage return) with a bar when the total is known,
  finished by a final line; otherwise (a file, a pipe, CI) plain lines, at most one per
  `interval` seconds per task, and a final line, so that a log file is not flooded.
Nothing is displayed by default: a library call, a test or a run started from the Dagster UI
only logs.

The API:
- `task(label, total=None, unit="lignes", *, rate=True, interval=None) -> Task`, on the
  process's reporter; `rate=False` for a few long items, `interval` to change the seconds
  between two reports of this task;
- `Task.advance(n=1, *, note=None)`, `Task.total` (settable), `Task.done`, `Task.close(failed=
  False)` (what leaving the `with` does: the final line, or « interrompu après … » on an error);
- `track(batches, label, total=None, unit="lignes", *, size=len) -> Iterator`;
- `Reporter(stream=None, *, bar=None, interval=10.0, redraw=0.2, clock=time.monotonic,
  width=None, logger=LOGGER)`, `use(reporter)`, `current()`;
- `forward_to(logger)`, for the step runner.
A terminal shows one task at a time: a task opened inside another draws over it until it ends.

Figures are written the French way, as in the rest of the observatory: a narrow no-break space
between thousands and before « % », a decimal comma.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO, TypeVar

LOGGER = logging.getLogger("observatoire.progress")

NNBSP = "\u202f"  # narrow no-break space: thousands, before « % » (French typography)
DEFAULT_INTERVAL = 10.0  # seconds between two plain lines (and log records) of a task
DEFAULT_REDRAW = 0.2  # seconds between two redraws of a terminal's line
BAR_WIDTH = 20
FALLBACK_WIDTH = 100  # columns when the terminal does not say

B = TypeVar("B")


# ---------------------------------------------------------------- French figures


def fr_int(n: float) -> str:
    """12345678 -> « 12 345 678 » (narrow no-break spaces)."""
    return f"{round(n):,}".replace(",", NNBSP)


def fr_rate(per_second: float) -> str:
    """A rate: whole above 10 (rows), one decimal below (a slow start, a small file)."""
    if per_second >= 10:
        return fr_int(per_second)
    return f"{per_second:.1f}".removesuffix(".0").replace(".", ",")


def fr_duration(seconds: float) -> str:
    """« 42 s », « 7 min 05 s », « 1 h 05 min »: as precise as a reader of a wait needs."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# ---------------------------------------------------------------- what a report says


@dataclass(frozen=True)
class Snapshot:
    """A task's figures at one moment: what every output writes, and what a record carries."""

    label: str
    unit: str
    done: int
    total: int | None
    elapsed: float  # seconds since the task began
    show_rate: bool = True
    note: str | None = None

    @property
    def rate(self) -> float | None:
        """Units per second since the start (None before any time has passed)."""
        return self.done / self.elapsed if self.elapsed > 0 else None

    @property
    def fraction(self) -> float | None:
        if self.total is None:
            return None
        if self.total <= 0:
            return 1.0
        return min(1.0, max(0.0, self.done / self.total))

    @property
    def remaining(self) -> float | None:
        """Seconds left at the average rate so far; None without a total or a rate yet."""
        rate = self.rate
        if self.total is None or not rate or self.done >= self.total:
            return None
        return (self.total - self.done) / rate

    def _count(self) -> str:
        if self.total is None:
            return f"{fr_int(self.done)} {self.unit}"
        return f"{fr_int(self.done)} / {fr_int(self.total)} {self.unit} ({self._pct()})"

    def _pct(self) -> str:
        return f"{int(100 * (self.fraction or 0.0))}{NNBSP}%"

    def _rate(self) -> str:
        rate = self.rate
        return f"{fr_rate(rate)} {self.unit}/s" if self.show_rate and rate is not None else ""

    def _note(self) -> str:
        return f" — {self.note}" if self.note else ""

    def line(self) -> str:
        """The task under way, in one line (plain output and log records)."""
        parts = [f"{self._count()} en {fr_duration(self.elapsed)}", self._rate()]
        remaining = self.remaining
        if remaining is not None:
            parts.append(f"reste ≈ {fr_duration(remaining)}")
        return f"{self.label} : " + ", ".join(p for p in parts if p) + self._note()

    def bar_line(self, ascii_only: bool = False) -> str:
        """The task under way for a terminal: a bar when the total is known, then what matters
        most first (a narrow terminal cuts the end: the rate goes before the remaining time)."""
        fraction = self.fraction
        if fraction is None:
            return self.line()
        full, empty = ("#", "-") if ascii_only else ("█", "░")
        filled = int(BAR_WIDTH * fraction)
        parts = [f"{self.label} {full * filled}{empty * (BAR_WIDTH - filled)} {self._pct()}"]
        remaining = self.remaining
        if remaining is not None:
            parts.append(f"reste ≈ {fr_duration(remaining)}")
        parts += [f"{fr_int(self.done)} / {fr_int(self.total or 0)} {self.unit}", self._rate()]
        return ", ".join(p for p in parts if p) + self._note()

    def final_line(self, failed: bool = False) -> str:
        """The task's last word: done (total time, average rate) or stopped, and where."""
        if failed:
            return f"{self.label} : interrompu après {self._count()} en {fr_duration(self.elapsed)}"
        rate = self._rate()
        return (
            f"{self.label} : {fr_int(self.done)} {self.unit} en {fr_duration(self.elapsed)}"
            + (f" ({rate})" if rate else "")
            + ", terminé"
        )


# ---------------------------------------------------------------- reporter and task


def _is_terminal(stream: TextIO | None) -> bool:
    if stream is None or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or bare stream
        return False


def _ascii_only(stream: TextIO | None) -> bool:
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "")
    return not encoding.startswith("utf")


class Reporter:
    """Where the tasks of this process report: a stream (optional) and `logging`.

    `bar` says whether to redraw one line in place; by default it is whether the stream is a
    terminal, decided here, once: Dagster redirects the process's stderr to its compute log
    (and mirrors it back to the terminal) while a run executes, so a later `isatty()` would say
    no. `clock` is injectable so that tests do not sleep.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        bar: bool | None = None,
        interval: float = DEFAULT_INTERVAL,
        redraw: float = DEFAULT_REDRAW,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
        logger: logging.Logger = LOGGER,
    ) -> None:
        self.stream = stream
        self.bar = _is_terminal(stream) if bar is None else bar and stream is not None
        self.interval = interval
        self.redraw = redraw
        self.clock = clock
        self.logger = logger
        self._width = width
        self._ascii = _ascii_only(stream)
        self._drawn = 0  # length of the line now on the terminal (0: none)

    def task(
        self,
        label: str,
        total: int | None = None,
        unit: str = "lignes",
        *,
        rate: bool = True,
        interval: float | None = None,
    ) -> Task:
        """A task reporting here; `rate=False` for a few long items (indicators), where
        « 0,3 indicateurs/s » would say less than the elapsed time."""
        return Task(self, label, total, unit, rate, self.interval if interval is None else interval)

    # -- outputs (called by Task)

    def _report(self, snap: Snapshot) -> None:
        """A due report: a plain line (no terminal), a log record."""
        text = snap.line()
        if self.stream is not None and not self.bar:
            self._write(text + "\n")
        self._log(text, snap)

    def _draw(self, snap: Snapshot) -> None:
        text = snap.bar_line(self._ascii)[: self._columns() - 1]
        # padding rubs out what a longer previous line left (no terminal escape needed)
        self._write("\r" + text + " " * max(0, self._drawn - len(text)))
        self._drawn = len(text)

    def _final(self, snap: Snapshot, failed: bool) -> None:
        text = snap.final_line(failed)
        if self.stream is not None:
            if self.bar and self._drawn:
                self._write("\r" + text + " " * max(0, self._drawn - len(text)) + "\n")
                self._drawn = 0
            else:
                self._write(text + "\n")
        self._log(text, snap)

    def _log(self, text: str, snap: Snapshot) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(text, extra={"progress": snap})

    def _write(self, text: str) -> None:
        assert self.stream is not None
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must not stop a month's work
            pass

    def _columns(self) -> int:
        if self._width is not None:
            return self._width
        try:
            return os.get_terminal_size(self.stream.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):  # redirected by Dagster, or no file
            return FALLBACK_WIDTH


class Task:
    """Work counted in units (rows by default); made by `Reporter.task` or `task`."""

    def __init__(
        self,
        reporter: Reporter,
        label: str,
        total: int | None,
        unit: str,
        show_rate: bool,
        interval: float,
    ) -> None:
        self.reporter = reporter
        self.label = label
        self.total = total
        self.unit = unit
        self.show_rate = show_rate
        self.interval = interval
        self.done = 0
        self.note: str | None = None
        self.closed = False
        self._lock = threading.Lock()
        self._start = reporter.clock()
        self._next_report = self._start + interval
        self._next_draw = self._start
        if reporter.bar:  # a terminal shows what runs from its first second
            self._draw(self._start)

    def snapshot(self, now: float | None = None) -> Snapshot:
        now = self.reporter.clock() if now is None else now
        return Snapshot(
            self.label,
            self.unit,
            self.done,
            self.total,
            now - self._start,
            self.show_rate,
            self.note,
        )

    def advance(self, n: int = 1, *, note: str | None = None) -> None:
        """`n` more units done; `note` (optional) is said after the figures from now on."""
        with self._lock:
            self.done += n
            if note is not None:
                self.note = note
            now = self.reporter.clock()
            if now >= self._next_report:
                self._next_report = now + self.interval
                self.reporter._report(self.snapshot(now))
            if self.reporter.bar and now >= self._next_draw:
                self._draw(now)

    def _draw(self, now: float) -> None:
        self._next_draw = now + self.reporter.redraw
        self.reporter._draw(self.snapshot(now))

    def close(self, failed: bool = False) -> None:
        """The final line and record (once): total time and rate, or where it stopped."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self.reporter._final(self.snapshot(), failed)

    def __enter__(self) -> Task:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(failed=exc_type is not None)


# ---------------------------------------------------------------- the process's reporter

_current = Reporter()  # logging only, until a command installs a display


def current() -> Reporter:
    return _current


@contextmanager
def use(reporter: Reporter) -> Iterator[Reporter]:
    """Tasks started inside report to `reporter` (the CLI: its stderr); the previous after."""
    global _current
    previous, _current = _current, reporter
    try:
        yield reporter
    finally:
        _current = previous


def task(
    label: str,
    total: int | None = None,
    unit: str = "lignes",
    *,
    rate: bool = True,
    interval: float | None = None,
) -> Task:
    """A task on the process's reporter (see the module's docstring)."""
    return _current.task(label, total, unit, rate=rate, interval=interval)


def track(
    batches: Iterable[B],
    label: str,
    total: int | None = None,
    unit: str = "lignes",
    *,
    size: Callable[[B], int] = len,
) -> Iterator[B]:
    """Each batch, counted by `size` once the loop's body is done with it.

    Leaving the loop early (break, an error in its body) reports the task as interrupted when
    the generator is closed.
    """
    with task(label, total, unit) as p:
        for batch in batches:
            yield batch
            p.advance(size(batch))


# ---------------------------------------------------------------- to another logger (Dagster)


class _Forward(logging.Handler):
    def __init__(self, target: logging.Logger) -> None:
        super().__init__(logging.INFO)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        # the text only: Dagster's JSON console logger would choke on a Snapshot in `extra`
        self.target.log(record.levelno, record.getMessage())


@contextmanager
def forward_to(target: logging.Logger) -> Iterator[None]:
    """While the block runs, progress records go to `target` (a Dagster step's `context.log`)
    and not to the root logger's handlers.

    A handler on our logger rather than Dagster's `managed_python_loggers`: it works on any
    instance (the CLI's, a test's ephemeral one) without a line in its dagster.yaml. The level
    is set to INFO so that the records are made even when the root logger says WARNING (the
    CLI without -v); propagation is cut because Dagster prints its log on its own console.
    """
    handler = _Forward(target)
    level, propagate = LOGGER.level, LOGGER.propagate
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
        LOGGER.propagate = propagate
