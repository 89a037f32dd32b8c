"""Files that appear whole or not at all: write beside the target, then rename over it.

A step killed mid-write (a preempted node, SIGKILL) must never leave a file under its final
name that a retried step, the next step or a reader of the export location could take for
complete. Every artifact file is written through these helpers: the bytes go to a hidden
temporary name in the same folder (so the rename stays on one filesystem), and
``os.replace`` moves it to the final name in one step. A kill leaves at most a hidden
``.tmp-*`` file that no reader looks for.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path`` that keeps its suffix (Keras checks ``.keras`` / ``.weights.h5``)."""
    return path.with_name(f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write; on success it replaces ``path``, on error it is removed."""
    final = Path(path)
    partial = temporary_name(final)
    try:
        yield partial
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)


def install_folder(source: str | Path, path: str | Path) -> None:
    """Moves the finished folder ``source`` to ``path`` (same filesystem), replacing what was there.

    An earlier folder under ``path`` (a retried step's) is moved aside, the new one renamed in,
    then the old one deleted: a reader sees the old folder or the new one, never a mix.
    """
    final = Path(path)
    old = temporary_name(final)
    if final.exists():
        os.replace(final, old)
    os.replace(source, final)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def replacing_folder(path: str | Path) -> Iterator[Path]:
    """Yields a temporary folder to fill; on success it takes ``path``'s place (:func:`install_folder`),
    on error it is removed."""
    final = Path(path)
    partial = temporary_name(final)
    partial.mkdir(parents=True)
    try:
        yield partial
        install_folder(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically."""
    with replacing(path) as partial:
        partial.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))
