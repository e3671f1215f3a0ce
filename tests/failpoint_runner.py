"""Run `observatoire refresh` in this process and kill it with SIGKILL at a named point.

A test harness, not part of the product: it wraps one library function so that its n-th call
kills the process (before or after the real call), which lands the kill exactly where a test
wants it (mid-build, inside the swap transaction, mid-publication) instead of at a random time.

    python tests/failpoint_runner.py <point> <mois> [--direct]

The month runs as `observatoire refresh` does, through Dagster; with `--direct`, as the same
steps without Dagster (`refresh.run_direct`, under the same lock and failure record), which
starts faster: the steps write the warehouse and the publication the same way.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from observatoire import cli
from observatoire.core import warehouse
from observatoire.indicators import compute as indicators
from observatoire.publication import publish

# point -> (module, function, call number, "before" or "after" the real call)
POINTS: dict[str, tuple[Any, str, int, str]] = {
    # the establishments read and cleaned into their build file, not swapped in
    "raw_avant_bascule": (warehouse, "swap_month_file", 1, "before"),
    # the establishments swapped in, the legal units written but not swapped in
    "clean_en_cours": (warehouse, "swap_month_file", 2, "before"),
    "indicateurs_en_cours": (indicators, "compute_indicator", 3, "before"),
    "publication_en_cours": (publish, "_copy_csv", 3, "after"),
    "publication_avant_bascule": (publish, "switch_current", 1, "before"),
    "publication_apres_bascule": (publish, "prune", 1, "before"),
}


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    if point == "dans_la_transaction_de_bascule":
        # inside the SIRENE swap's transaction: the month's views replaced, not committed
        original = warehouse.swap_month_file

        @functools.wraps(original)
        def swap(con, mois, build, views, also=None):  # noqa: ANN001, ANN202
            def dying(final):  # noqa: ANN001, ANN202
                if also is not None:
                    also(final)
                _kill()

            return original(con, mois, build, views, also=dying)

        warehouse.swap_month_file = swap
        return
    module, name, nth, when = POINTS[point]
    original: Callable[..., Any] = getattr(module, name)
    calls = {"n": 0}

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == nth and when == "before":
            _kill()
        result = original(*args, **kwargs)
        if calls["n"] == nth and when == "after":
            _kill()
        return result

    setattr(module, name, wrapper)


if __name__ == "__main__":
    arm(sys.argv[1])
    if "--direct" in sys.argv[3:]:
        from observatoire import refresh
        from observatoire.core.settings import Settings

        refresh.refresh(Settings.from_env(), sys.argv[2])
        sys.exit(0)
    # the month is already live from the same files: refresh it anyway, to be killed
    sys.exit(cli.main(["refresh", "--mois", sys.argv[2], "--forcer"]))
