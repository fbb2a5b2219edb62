"""Process-wide tweaks, in one place: thread pools, the C allocator, logging.

Everything here changes the state of the whole process (native thread pools, glibc's malloc,
the ``lsegeo`` logger), so library code asks for it here instead of doing it itself:

* :func:`available_cores` and :func:`worker_thread_share` -- how many threads a process, or one
  of several workers on the same machine, should use; :func:`worker_threads` -- the threads
  that native thread pools (XGBoost's ``nthread``, BLAS, torch) may use in this process: a dask
  worker's thread count inside a worker, every available core elsewhere.
* :func:`thread_environment` and :func:`set_process_threads` -- the thread limits of a whole
  worker process: environment variables read by BLAS and OpenMP when they load
  (``OMP_NUM_THREADS``, ..., and ``OMP_WAIT_POLICY=PASSIVE`` so that idle OpenMP threads sleep
  instead of spinning), and the limits of the pools already loaded. The cluster factory
  (:func:`lsegeo.parallel.dask_client`) applies them on every worker.
* :func:`limit_threads` -- a context manager that caps the BLAS and OpenMP pools (numpy/scipy's
  BLAS, XGBoost's OpenMP) through ``threadpoolctl``, and torch's intra-op threads when torch is
  already imported; :func:`one_blas_thread` is its one-thread form for many small matrix
  problems (a Gaussian process per basin), which run many times slower with several BLAS threads
  competing.
* :func:`roomy_malloc` -- keeps numpy's medium-sized temporaries on the heap while fitting
  (glibc only; see its docstring).
* :func:`configure_logging` -- one stderr handler on the ``lsegeo`` logger, for the CLI.

``threadpoolctl`` comes with scikit-learn (extra ``ml``); without it the thread limits do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = [
    "available_cores",
    "worker_thread_share",
    "worker_threads",
    "thread_environment",
    "set_process_threads",
    "THREAD_COUNT_VARIABLES",
    "limit_threads",
    "one_blas_thread",
    "roomy_malloc",
    "configure_logging",
]

logger = logging.getLogger(__name__)

_CONTROLLER: Any = None
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_HANDLER_NAME = "lsegeo-stderr"
_PROCESS_THREADS: int | None = None  # set by set_process_threads (on a dask worker: its thread count)
_PROCESS_LIMITER: Any = None  # the threadpoolctl limiter of set_process_threads, kept alive

#: environment variables that size the thread pools of OpenMP (GNU, LLVM and Intel runtimes:
#: XGBoost, torch), OpenBLAS, MKL, BLIS, Apple Accelerate and numexpr when those libraries load
THREAD_COUNT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                          "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


def worker_thread_share(n_workers: int, cores: int | None = None) -> int:
    """Threads for each of ``n_workers`` processes sharing the machine's cores.

    Parameters
    ----------
    n_workers : int
        Processes that run at the same time (e.g. dask workers on one node).
    cores : int, optional
        Cores to share; default :func:`available_cores`.

    Returns
    -------
    int
        ``cores // n_workers``, at least 1.
    """
    cores = available_cores() if cores is None else int(cores)
    return max(1, cores // max(1, int(n_workers)))


def _dask_worker_threads() -> int | None:
    """The thread count of the dask worker running the calling task, or None outside a worker.

    distributed is not imported here: a process that has not imported it is no dask worker.
    """
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        return int(get_worker().state.nthreads)
    except (ValueError, AttributeError):  # not in a worker, or a worker without state
        return None


def worker_threads() -> int:
    """Threads that this process's native thread pools may use, at least 1.

    In order: the count given to :func:`set_process_threads` (on every worker of a cluster made
    by :func:`lsegeo.parallel.dask_client`: the worker's thread count); else, inside a task of a
    dask worker, that worker's thread count (``nthreads``), so that a task never runs more
    threads than its worker was given; else :func:`available_cores`. Library code that creates
    a multi-threaded model (XGBoost's ``n_jobs``, torch) reads this, so that the same code uses
    every core in a single process and one core in a one-thread worker.

    Returns
    -------
    int
    """
    if _PROCESS_THREADS is not None:
        return _PROCESS_THREADS
    return _dask_worker_threads() or available_cores()


def thread_environment(n_threads: int | None) -> dict[str, str]:
    """Environment variables that keep a process's native thread pools within ``n_threads``.

    Parameters
    ----------
    n_threads : int or None
        Threads of the process (a dask worker's ``nthreads``); None sets the wait policy only.

    Returns
    -------
    dict of str to str
        Every name of :data:`THREAD_COUNT_VARIABLES` set to ``n_threads``, and
        ``OMP_WAIT_POLICY``: ``PASSIVE`` (OpenMP threads that wait for work sleep instead of
        spinning; XGBoost's spinning threads made a 2-thread fit many times slower than a
        1-thread one on busy cores), or the value already set in this process's environment.

    Notes
    -----
    BLAS and OpenMP read these variables once, when the library is loaded, so they must be in
    the environment of the worker process before it imports numpy, XGBoost or torch (the
    environment of a batch job, of a container, or the ``env`` of a local cluster's workers);
    :func:`set_process_threads` limits the libraries already loaded.
    """
    env = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    if n_threads is not None:
        env.update(dict.fromkeys(THREAD_COUNT_VARIABLES, str(max(1, int(n_threads)))))
    return env


def set_process_threads(n_threads: int) -> dict[str, Any]:
    """Limit every native thread pool of this process to ``n_threads``, for good.

    Done once per dask worker (:class:`lsegeo.clusters.threads.ThreadLimits`):

    * :func:`worker_threads` returns ``n_threads`` from now on;
    * :func:`thread_environment` is written into ``os.environ``, so that libraries loaded later
      (XGBoost's and torch's OpenMP) and child processes start with these limits;
    * the BLAS and OpenMP pools already loaded are limited through ``threadpoolctl`` (without it,
      nothing more is done);
    * torch's intra-op threads are set with ``torch.set_num_threads`` when torch is already
      imported (a later import reads ``OMP_NUM_THREADS``).

    Parameters
    ----------
    n_threads : int
        At least 1.

    Returns
    -------
    dict
        What was set: ``threads``, ``environment`` and ``libraries`` (threadpoolctl's report of
        the pools limited: ``internal_api``, ``num_threads``, ...).
    """
    global _PROCESS_THREADS, _PROCESS_LIMITER, _CONTROLLER
    n = max(1, int(n_threads))
    _PROCESS_THREADS = n
    env = thread_environment(n)
    os.environ.update(env)
    libraries: list[dict[str, Any]] = []
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        logger.debug("threadpoolctl is not installed: the loaded thread pools keep their sizes")
    else:
        _CONTROLLER = ThreadpoolController()  # a fresh scan: libraries may have been loaded since the last
        _PROCESS_LIMITER = _CONTROLLER.limit(limits=n)  # applied now, never restored
        libraries = _CONTROLLER.info()
    torch_mod = sys.modules.get("torch")
    if torch_mod is not None:
        torch_mod.set_num_threads(n)
    return {"threads": n, "environment": env, "libraries": libraries}


def _controller() -> Any:
    """The process's ``threadpoolctl.ThreadpoolController`` (built once: it scans loaded libraries), or None."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            logger.debug("threadpoolctl is not installed: native thread pools are not limited")
            return None
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


@contextlib.contextmanager
def limit_threads(n_threads: int, *, torch: bool = True) -> Iterator[None]:
    """Cap the native thread pools at ``n_threads`` while the block runs.

    Parameters
    ----------
    n_threads : int
        Threads for BLAS and OpenMP (e.g. a worker's :func:`worker_thread_share`).
    torch : bool
        Also set ``torch.set_num_threads`` when torch is already imported (it is never imported
        here); the previous value is restored afterwards.

    Notes
    -----
    XGBoost uses OpenMP; a model given ``n_jobs``/``nthread`` explicitly keeps its own count.
    """
    n = max(1, int(n_threads))
    ctl = _controller()
    torch_mod = sys.modules.get("torch") if torch else None
    before = torch_mod.get_num_threads() if torch_mod is not None else None
    with ctl.limit(limits=n) if ctl is not None else contextlib.nullcontext():
        if torch_mod is not None:
            torch_mod.set_num_threads(n)
        try:
            yield
        finally:
            if torch_mod is not None:
                torch_mod.set_num_threads(before)


def one_blas_thread() -> contextlib.AbstractContextManager:
    """A context manager limiting every BLAS/OpenMP pool to one thread (torch untouched).

    The threadpoolctl controller is built once per process, so entering it is cheap enough to
    do around every prediction.
    """
    ctl = _controller()
    return ctl.limit(limits=1) if ctl is not None else contextlib.nullcontext()


@contextlib.contextmanager
def roomy_malloc() -> Iterator[None]:
    """Keep numpy's medium-sized temporaries on the heap while the block runs (glibc only).

    dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``; with that variable set
    glibc stops adapting its mmap threshold, so every array above 128 KiB (a Gaussian process's
    kernel gradients are ~4.5 MB) is mapped and unmapped again at each likelihood evaluation,
    which made the GP fits 2.4 times slower in dask workers. While the block runs, the mmap and
    trim thresholds are raised (``mallopt``); afterwards they are set back and the heap trimmed
    (``malloc_trim``), as dask wants. Without the variable, or off Linux, nothing is changed.
    """
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = None
    if trim is not None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            libc = None
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
    libc.mallopt(_M_TRIM_THRESHOLD, 512 * 2**20)
    try:
        yield
    finally:
        try:
            libc.mallopt(_M_TRIM_THRESHOLD, int(trim))
        except ValueError:
            pass
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 2**10)
        libc.malloc_trim(0)


def configure_logging(level: int | str = logging.INFO) -> logging.Logger:
    """Send the ``lsegeo`` logger's records to stderr, one plain line each (for the CLI).

    Idempotent: a second call changes the level of the handler it added before instead of adding
    another. Records still propagate to the root logger's handlers.

    Parameters
    ----------
    level : int or str
        ``logging.INFO`` (default), ``"DEBUG"``, ...

    Returns
    -------
    logging.Logger
        The ``lsegeo`` logger.
    """
    log = logging.getLogger("lsegeo")
    asked = level
    level = logging.getLevelName(level.upper()) if isinstance(level, str) else int(level)
    if not isinstance(level, int):
        raise ValueError(f"unknown logging level {asked!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    handler = next((h for h in log.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    else:  # the stream of this call: sys.stderr may have been replaced since (e.g. by a test runner)
        handler.setStream(sys.stderr)
    handler.setLevel(level)
    log.setLevel(level)
    return log
