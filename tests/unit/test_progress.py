"""Progress of long work: what the terminal, a log file and `logging` get, on a fake clock."""

from __future__ import annotations

import io
import logging
import os
import threading

import pytest

from observatoire.core import progress
from observatoire.core.progress import NNBSP

LABEL = "Lecture des établissements"


class Clock:
    """Seconds chosen by the test: no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def _no_dumb_terminal(monkeypatch):
    monkeypatch.delenv("TERM", raising=False)


def fr(text: str) -> str:
    """Test texts written with plain spaces; the reporter writes narrow no-break ones."""
    return text.replace("_", NNBSP)


# ---------------------------------------------------------------- French figures


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0 s"), (42.4, "42 s"), (59.6, "1 min 00 s"), (425, "7 min 05 s"), (3900, "1 h 05 min")],
)
def test_durations_are_said_as_a_reader_of_a_wait_needs(seconds, said):
    assert progress.fr_duration(seconds) == said


def test_numbers_have_narrow_no_break_spaces_and_a_decimal_comma():
    assert progress.fr_int(42_000_000) == fr("42_000_000")
    assert progress.fr_rate(71_428.6) == fr("71_429")
    assert progress.fr_rate(0.25) == "0,2"
    assert progress.fr_rate(5.0) == "5"


# ---------------------------------------------------------------- plain lines (file, pipe, CI)


def test_plain_lines_at_most_one_per_interval_then_a_final_line(clock):
    out = io.StringIO()
    reporter = progress.Reporter(out, interval=10, clock=clock)
    assert not reporter.bar  # a StringIO is no terminal
    with reporter.task(LABEL, total=1000) as p:
        assert out.getvalue() == ""  # no line at the start: a quick task says one line in all
        for _ in range(9):  # one batch of 50 rows a second: a line every 10 s only
            clock.tick(1)
            p.advance(50)
        assert out.getvalue() == ""
        clock.tick(1)
        p.advance(50)  # 10 s: 500 rows, 50 a second, 500 left → 10 s
        for _ in range(5):
            clock.tick(1)
            p.advance(10)
    lines = out.getvalue().splitlines()
    assert lines == [
        fr(f"{LABEL} : 500 / 1_000 lignes (50_%) en 10 s, 50 lignes/s, reste ≈ 10 s"),
        fr(f"{LABEL} : 550 lignes en 15 s (37 lignes/s), terminé"),
    ]
    assert "\r" not in out.getvalue()


def test_unknown_total_gives_rows_and_rate_but_no_percentage_nor_time_left(clock):
    out = io.StringIO()
    reporter = progress.Reporter(out, interval=5, clock=clock)
    with reporter.task("Nettoyage des unités légales") as p:
        clock.tick(5)
        p.advance(1_000_000)
    first, final = out.getvalue().splitlines()
    assert first == fr("Nettoyage des unités légales : 1_000_000 lignes en 5 s, 200_000 lignes/s")
    assert "reste" not in first and "%" not in first
    assert final == fr(
        "Nettoyage des unités légales : 1_000_000 lignes en 5 s (200_000 lignes/s), terminé"
    )


def test_total_set_once_counted_brings_the_time_left(clock):
    out = io.StringIO()
    with progress.Reporter(out, interval=0, clock=clock).task(LABEL) as p:
        clock.tick(2)
        p.advance(100)
        p.total = 300
        clock.tick(2)
        p.advance(100)
    lines = out.getvalue().splitlines()
    assert "reste" not in lines[0]
    assert lines[1] == fr(f"{LABEL} : 200 / 300 lignes (66_%) en 4 s, 50 lignes/s, reste ≈ 2 s")


def test_a_failed_task_says_where_it_stopped_and_the_error_goes_on(clock):
    out = io.StringIO()
    reporter = progress.Reporter(out, clock=clock)
    with pytest.raises(RuntimeError, match="disque plein"), reporter.task(LABEL, total=10) as p:
        clock.tick(3)
        p.advance(4)
        raise RuntimeError("disque plein")
    assert out.getvalue() == fr(f"{LABEL} : interrompu après 4 / 10 lignes (40_%) en 3 s\n")


def test_items_without_a_rate_say_the_elapsed_time_and_the_note(clock):
    """The indicators: a few long items, where a rate per second would say little."""
    out = io.StringIO()
    reporter = progress.Reporter(out, interval=0, clock=clock)
    with reporter.task("Calcul des indicateurs", 4, "indicateurs", rate=False) as p:
        clock.tick(6)
        p.advance(note="emplois_salaries_estimes calculé")
    first, final = out.getvalue().splitlines()
    assert first == (
        fr("Calcul des indicateurs : 1 / 4 indicateurs (25_%) en 6 s, reste ≈ 18 s")
        + " — emplois_salaries_estimes calculé"
    )
    assert final == "Calcul des indicateurs : 1 indicateurs en 6 s, terminé"


def test_track_counts_each_batch_after_the_loop_body(clock):
    out = io.StringIO()
    batches = [[0] * 3, [0] * 5, [0] * 2]
    seen = []
    with progress.use(progress.Reporter(out, interval=0, clock=clock)):
        for batch in progress.track(batches, LABEL, total=10):
            clock.tick(1)
            seen.append(len(batch))
    assert seen == [3, 5, 2]
    lines = out.getvalue().splitlines()
    assert [line.split(" lignes")[0].rsplit(": ", 1)[1] for line in lines[:3]] == [
        "3 / 10",
        "8 / 10",
        "10 / 10",
    ]
    assert lines[-1] == f"{LABEL} : 10 lignes en 3 s (3,3 lignes/s), terminé"


def test_nothing_is_displayed_unless_a_display_is_installed(clock, capsys):
    with progress.task(LABEL, total=10) as p:
        p.advance(10)
    assert capsys.readouterr() == ("", "")
    out = io.StringIO()
    reporter = progress.Reporter(out, clock=clock)
    with progress.use(reporter):
        assert progress.current() is reporter
        with progress.task(LABEL):
            pass
    assert progress.current() is not reporter
    assert out.getvalue() == f"{LABEL} : 0 lignes en 0 s, terminé\n"


def test_advance_between_reports_costs_no_output(clock):
    """Per batch, not per row, but even per row it only counts and compares."""
    out = io.StringIO()
    with progress.Reporter(out, interval=10, clock=clock).task(LABEL) as p:
        for _ in range(100_000):
            p.advance(1)
        assert out.getvalue() == "" and p.done == 100_000


def test_batches_counted_from_several_threads_are_all_counted(clock):
    """A function Polars's streaming engine calls per batch runs in its worker threads."""
    with progress.Reporter(io.StringIO(), clock=clock).task(LABEL) as p:

        def work() -> None:
            for _ in range(2000):
                p.advance(3)

        workers = [threading.Thread(target=work) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert p.done == 24_000


# ---------------------------------------------------------------- terminal


def test_on_a_terminal_one_line_is_redrawn_in_place_then_finished(clock):
    term = Terminal()
    reporter = progress.Reporter(term, interval=10, redraw=0.2, clock=clock, width=300)
    assert reporter.bar
    with reporter.task(LABEL, total=1_000) as p:
        assert term.getvalue().startswith("\r" + LABEL + " " + "░" * 20 + fr(" 0_%"))
        clock.tick(1)
        p.advance(250)
        p.advance(250)  # within 0.2 s of the last redraw: not drawn
        clock.tick(1)
        p.advance(100)
    text = term.getvalue()
    frames = text.split("\r")[1:]
    assert len(frames) == 4  # start, two redraws, the final line
    assert frames[1].startswith(
        LABEL + " " + "█" * 5 + "░" * 15 + fr(" 25_%, reste ≈ 3 s, 250 / 1_000")
    )
    assert frames[2].startswith(
        LABEL
        + " "
        + "█" * 12
        + "░" * 8
        + fr(" 60_%, reste ≈ 1 s, 600 / 1_000 lignes, 300 lignes/s")
    )
    assert frames[3].rstrip(" \n") == fr(f"{LABEL} : 600 lignes en 2 s (300 lignes/s), terminé")
    assert text.endswith("\n") and text.count("\n") == 1  # one line in the scrollback
    # the final line is shorter than the bar it replaces: padded to rub it out
    assert len(frames[3].rstrip("\n")) >= len(frames[2])


def test_the_bar_fits_the_terminal_width(clock):
    term = Terminal()
    with progress.Reporter(term, clock=clock, width=60).task(LABEL, total=10**9) as p:
        clock.tick(1)
        p.advance(10**6)
    frames = term.getvalue().split("\r")[1:-1]
    assert frames and all(len(f) <= 59 for f in frames)


def _drain(master: int) -> str:
    """Everything written to the pseudo terminal: one read may return only its first chunk
    (seen in CI), so read until the closed slave side answers EIO."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the slave is closed and everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks).decode("utf-8")


def test_a_real_pseudo_terminal_gets_the_bar(clock):
    master, slave = os.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as stream:
        reporter = progress.Reporter(stream, clock=clock)
        assert reporter.bar
        with reporter.task(LABEL, total=4) as p:
            clock.tick(1)
            p.advance(4)
    received = _drain(master)
    assert received.startswith("\r" + LABEL + " ░")
    assert "\r" + LABEL + " " + "█" * 20 in received
    assert LABEL + " : 4 lignes en 1 s" in received


def test_a_dumb_terminal_gets_plain_lines(clock, monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    assert not progress.Reporter(Terminal(), clock=clock).bar


# ---------------------------------------------------------------- logging


def test_records_follow_the_plain_lines_with_their_figures(clock, caplog):
    caplog.set_level(logging.INFO, logger="observatoire.progress")
    term = Terminal()  # a terminal gets a bar; the records stay rate-limited
    with progress.Reporter(term, interval=10, clock=clock).task(LABEL, total=100) as p:
        for _ in range(20):
            clock.tick(1)
            p.advance(5)
    records = [r for r in caplog.records if r.name == "observatoire.progress"]
    assert [r.getMessage() for r in records] == [
        fr(f"{LABEL} : 50 / 100 lignes (50_%) en 10 s, 5 lignes/s, reste ≈ 10 s"),
        fr(f"{LABEL} : 100 / 100 lignes (100_%) en 20 s, 5 lignes/s"),
        f"{LABEL} : 100 lignes en 20 s (5 lignes/s), terminé",
    ]
    assert all(r.levelno == logging.INFO for r in records)
    snap = records[0].progress
    assert (snap.done, snap.total, snap.rate, snap.remaining) == (50, 100, 5.0, 10.0)


def test_forward_to_hands_records_to_another_logger_and_not_to_the_root(clock, caplog):
    """What a Dagster step does with `context.log`; the root's console must not print them
    again, even when the root says WARNING (the CLI without -v) or INFO (with -v)."""
    caplog.set_level(logging.WARNING)
    target = logging.Logger("dagster-like")  # like DagsterLogManager: no parent
    got: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record)

    target.addHandler(Keep())
    reporter = progress.Reporter(clock=clock)  # no display: as in a run from the UI
    with progress.forward_to(target):
        logging.getLogger().setLevel(logging.INFO)
        with reporter.task(LABEL) as p:
            clock.tick(10)
            p.advance(7)
    assert [r.getMessage() for r in got] == [
        f"{LABEL} : 7 lignes en 10 s, 0,7 lignes/s",
        f"{LABEL} : 7 lignes en 10 s (0,7 lignes/s), terminé",
    ]
    assert not [r for r in caplog.records if r.name == "observatoire.progress"]
    # restored after the step
    assert progress.LOGGER.propagate and progress.LOGGER.level == logging.NOTSET
    assert not progress.LOGGER.handlers
