"""The per-pair time limit (``--pair-timeout``), the user's stop requests (Ctrl-C, SIGTERM), and
telling a user's Ctrl-C from a plugin's KeyboardInterrupt.

A pair trains where it is: in the run's process, or on a Dask worker. A child process per pair
would stop any pair, but it must be given the loaded dataset and the plugins again, and a CuPy
context does not survive a fork; so the pair stays where it is and is stopped two ways:

* in the main thread of the run's process, a ``SIGALRM`` timer raises :class:`PairTimeout`
  wherever the plugin's Python code is (a busy loop, a sleep, a wait);
* anywhere (a Dask worker's thread), the harness checks the time after every batch and epoch.

Neither stops a plugin stuck inside one C call that never returns; on Dask the run's process
cancels the pair's task at the limit and goes on (see :mod:`seqbench.executors.dask_executor`).

A signal handler's exception is lost where it lands in code whose exceptions Python prints and
ignores (a ``__del__``, a weakref callback during garbage collection): so a stop the user asked
for is also remembered (:func:`request_stop`), raised again at the pair's next batch or epoch (as
the time limit is) and, at the latest, where the block that asked for it (:func:`stops_on`) ends;
Python's "Exception ignored" report of it is left out.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

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


#: The stop the user asked for (its exception type), until the :func:`stops_on` block ends.
_requested: list[type[UserInterrupt]] = []


def request_stop(kind: type[UserInterrupt]) -> NoReturn:
    """Raise ``kind`` (from a signal handler), remembered should this raise be lost (see the
    module docstring)."""
    _requested[:] = [kind]
    raise kind()


def raise_requested_stop() -> None:
    """Raise the stop the user asked for, if any (main thread only: the one signals reach)."""
    if _requested and _is_main_thread():
        raise _requested[0]()


def _quiet_about_stops(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    """``sys.unraisablehook`` less the stops: they are raised again where they can stop the run."""

    def quiet(unraisable: Any) -> object:
        return None if isinstance(unraisable.exc_value, UserInterrupt) else hook(unraisable)

    return quiet


@contextlib.contextmanager
def stops_on(signum: int, handler: Callable[[int, Any], None]) -> Iterator[None]:
    """While the block runs, signal ``signum`` calls ``handler`` (which calls :func:`request_stop`);
    a stop asked for in the block and lost is raised when it ends without an exception. Main
    thread only (``ValueError`` elsewhere)."""
    previous = signal.signal(signum, handler)
    hook = sys.unraisablehook
    sys.unraisablehook = _quiet_about_stops(hook)
    try:
        yield
    finally:
        signal.signal(signum, previous)
        sys.unraisablehook = hook
        requested = _requested[:]
        _requested.clear()
    if requested:
        raise requested[0]()


def _raise_user_interrupt(signum: int, frame: Any) -> None:
    request_stop(UserInterrupt)


@contextlib.contextmanager
def user_interrupts() -> Iterator[None]:
    """While the block (a run) lives, Ctrl-C raises :class:`UserInterrupt` (main thread only,
    where SIGINT has Python's default handler; elsewhere nothing changes)."""
    if not _is_main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    with stops_on(signal.SIGINT, _raise_user_interrupt):
        yield


def is_plugins_interrupt(exc: KeyboardInterrupt) -> bool:
    """Whether a KeyboardInterrupt out of a plugin is its own: not the user's Ctrl-C, which is a
    :class:`UserInterrupt` where :func:`user_interrupts` is on, and cannot reach another thread."""
    if isinstance(exc, UserInterrupt):
        return False
    return not _is_main_thread() or signal.getsignal(signal.SIGINT) is _raise_user_interrupt


class _Watched(Progress):
    """``progress``, raising at each batch and epoch the stop the user asked for and, once
    ``deadline`` (if any) has passed, :class:`PairTimeout`."""

    def __init__(self, progress: Progress, deadline: float | None, seconds: float | None) -> None:
        self.progress, self.deadline, self.seconds = progress, deadline, seconds

    def _check(self) -> None:
        raise_requested_stop()
        if self.deadline is not None and self.seconds is not None and time.monotonic() > self.deadline:
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
    """The progress to train a pair with, under a limit of ``seconds`` (None: none), and
    stopping where the user asked to stop."""
    if seconds is None:
        yield _Watched(progress, None, None)
        return
    watched = _Watched(progress, time.monotonic() + seconds, seconds)
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
