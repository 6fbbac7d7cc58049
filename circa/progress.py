"""Progress on stderr (stdout stays free for results and ``--json``)."""
from __future__ import annotations

import contextlib
import time

from rich.console import Console

console = Console(stderr=True, highlight=False, soft_wrap=True)   # never break messages


@contextlib.contextmanager
def step(what: str):
    """Show ``what`` with a spinner while it runs, then how long it took."""
    started = time.monotonic()
    with console.status(what + " ..."):
        try:
            yield
        except BaseException:
            console.print(f"[red]x[/red] {what}: failed after {time.monotonic() - started:.1f} s")
            raise
    console.print(f"[green]ok[/green] {what} ({time.monotonic() - started:.1f} s)")


def info(message: str):
    console.print(f"[blue]-[/blue] {message}")
