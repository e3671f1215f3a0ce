"""One refresh at a time per warehouse, said in French before DuckDB says it in English.

DuckDB's own file lock is only taken while a connection is open: a refresh opens and closes the
warehouse, and Dagster opens it once per asset, so a second refresh could slip in between or die
on DuckDB's lock with a traceback. An OS lock (`flock`) held for the whole refresh on a file
beside the warehouse tells the second one who runs and since when, and lets it wait instead.
The kernel drops the lock when its holder dies, so a killed refresh never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

LOCK_SUFFIX = ".rafraichissement.lock"


class RefreshRunningError(RuntimeError):
    """Another refresh holds the warehouse: this one did nothing."""


def lock_path(warehouse: Path) -> Path:
    warehouse = Path(warehouse)
    return warehouse.with_name(warehouse.name + LOCK_SUFFIX)


def holder(path: Path) -> dict[str, object]:
    """Who holds the lock, as written by its holder (empty if it is between lock and write)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def describe(info: dict[str, object]) -> str:
    if not info:
        return "processus inconnu"
    parts = [f"processus {info.get('pid', '?')}"]
    if info.get("hote") and info.get("hote") != socket.gethostname():
        parts[0] += f" sur {info['hote']}"
    started = info.get("debut")
    if isinstance(started, str):
        with contextlib.suppress(ValueError):
            parts.append(f"depuis le {datetime.fromisoformat(started):%d/%m/%Y à %H:%M:%S}")
    if info.get("mois"):
        parts.append(f"mois {info['mois']}")
    return ", ".join(parts)


@contextlib.contextmanager
def refresh_lock(
    warehouse: Path,
    mois: str,
    *,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold the warehouse's refresh lock for the block, or refuse (or wait) if it is taken.

    The lock file is never deleted: removing a file others may have opened would let two
    processes each lock a different file of the same name.
    """
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = describe(holder(path))
            if not wait:
                raise RefreshRunningError(
                    f"Un rafraîchissement est déjà en cours sur l'entrepôt {warehouse} "
                    f"({running}) : rien n'a été fait. Relancez quand il sera terminé, ou "
                    "ajoutez --attendre pour attendre sa fin."
                ) from None
            if on_wait is not None:
                on_wait(
                    f"Un rafraîchissement est déjà en cours sur l'entrepôt {warehouse} "
                    f"({running}) : attente de sa fin…"
                )
            fcntl.flock(fd, fcntl.LOCK_EX)
        stamp = {
            "pid": os.getpid(),
            "hote": socket.gethostname(),
            "debut": datetime.now().astimezone().isoformat(timespec="seconds"),
            "mois": mois,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(stamp, ensure_ascii=False).encode("utf-8"), 0)
        yield path
    finally:
        # closing the descriptor releases the lock
        os.close(fd)
