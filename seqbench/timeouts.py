"""The per-pair time limit (``--pair-timeout``) and telling a user's Ctrl-C from a plugin's
KeyboardInterrupt.

A pair trains where it is: in the run's process, or on a Dask worker. A child process per pair
would stop any pair, but it must be given the loaded dataset and the plugins again, and a CuPy
context does not survive a fork; so the pair stays where it is and is stopped two ways:

* in the main thread of the run's process, a ``SIGALRM`` timer raises :class:`PairTimeout`
  wherever the plugin's Python code is (a busy loop, a sleep, a wait);
* anywhere (a Dask worker's thread), the harness checks the time after every batch and epoch.

Neither stops a plugin stuck inside one C call that never returns; on Dask the run's process
cancels the pair's task at the limit and goes on (see :mod:`seqbench.executors.dask_executor`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from seqbench.progress import Progress


class PairTimeout(BaseException):
    """A pair ran past its time limit (a BaseException: a plugin's ``except Exception`` must not swallow it)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the pair ran past --pair-timeout {seconds:g} s: stopped")


class UserInterrupt(KeyboardInterrupt):
    """The user pressed Ctrl-C (SIGINT) while a run lived: unlike a KeyboardInterrupt that a
    plugin raises itself, it stops the run."""


def _is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_user_interrupt(signum: int, frame: Any) -> None:
    raise UserInterrupt()


@contextlib.contextmanager
def user_interrupts() -> Iterator[None]:
    """While the block runs, Ctrl-C raises :class:`UserInterrupt` (main thread only; elsewhere
    nothing changes)."""
    if not _is_main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    previous = signal.signal(signal.SIGINT, _raise_user_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def is_plugins_interrupt(exc: KeyboardInterrupt) -> bool:
    """Whether a KeyboardInterrupt out of a plugin is its own: not the user's Ctrl-C, which is a
    :class:`UserInterrupt` where :func:`user_interrupts` is on, and cannot reach another thread."""
    if isinstance(exc, UserInterrupt):
        return False
    return not _is_main_thread() or signal.getsignal(signal.SIGINT) is _raise_user_interrupt


class _Deadline(Progress):
    """``progress``, raising :class:`PairTimeout` at each batch and epoch once ``deadline`` has passed."""

    def __init__(self, progress: Progress, deadline: float, seconds: float) -> None:
        self.progress, self.deadline, self.seconds = progress, deadline, seconds

    def _check(self) -> None:
        if time.monotonic() > self.deadline:
            raise PairTimeout(self.seconds)

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        self._check()
        self.progress.epoch_start(epoch, epochs, n_batches)

    def batch_done(self) -> None:
        self._check()
        self.progress.batch_done()

    def epoch_end(self, record: Any, best_epoch: int) -> None:
        self._check()
        self.progress.epoch_end(record, best_epoch)


@contextlib.contextmanager
def time_limit(seconds: float | None, progress: Progress) -> Iterator[Progress]:
    """The progress to train a pair with, under a limit of ``seconds`` (None: none)."""
    if seconds is None:
        yield progress
        return
    watched = _Deadline(progress, time.monotonic() + seconds, seconds)
    if not (_is_main_thread() and hasattr(signal, "setitimer")):
        yield watched
        return

    def expire(signum: int, frame: Any) -> None:
        raise PairTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield watched
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
