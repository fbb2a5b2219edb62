"""The proposal step on dask workers: one task per group of basins, the emulator shipped once.

:func:`propose_on_dask` scatters the emulator's bytes to every worker once (``broadcast=True``);
each worker process loads them once with the given loader and keeps the emulator, keyed by a hash
of the bytes and the loader, for all its tasks and later calls (:func:`emulator_cache_info`
tells how often). The random streams of :func:`~lsegeo.optimise.proposals.propose` depend on the
basin, not on the group, so the result equals that of one call on all basins (as long as the
emulator predicts each row independently of the rest of its batch, as tree ensembles and
networks in eval mode do).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import sys
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lsegeo.optimise.candidates import Proposals, empty_proposals
from lsegeo.optimise.problem import make_setup
from lsegeo.optimise.proposals import ENGINES, propose
from lsegeo.optimise.settings import ProposalSettings

__all__ = ["emulator_cache_info", "propose_on_dask"]

logger = logging.getLogger(__name__)

_CACHE_SIZE = 2                                    # emulators kept per worker process
_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_LOADS: Counter = Counter()
#: Keyword arguments of :func:`propose` that travel unchanged to every task.
_TASK_KWARGS = ("algorithm", "pop_size", "n_gen", "n_restarts", "seed", "min_distance", "sampling", "engine",
                "predict_kwargs", "local_share", "local_anchors", "local_candidates", "local_radius")


def emulator_cache_info() -> dict[str, int]:
    """How often each emulator was loaded in this process, by cache key.

    Run it on the workers with ``client.run(emulator_cache_info)`` to check that an emulator
    shipped by :func:`propose_on_dask` was loaded once per worker process.

    Returns
    -------
    dict of str to int
        ``"<loader>:<blake2b of the bytes>" -> loads``.
    """
    with _CACHE_LOCK:
        return dict(_LOADS)


def _resolve_loader(loader: Callable[[bytes], Any] | str) -> Callable[[bytes], Any]:
    if callable(loader):
        return loader
    if isinstance(loader, str) and ":" in loader:
        module, _, name = loader.partition(":")
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"loader {loader!r} is not callable")
        return obj
    raise ValueError(f"loader must be a callable or a 'module:function' string, got {loader!r}")


def _loader_name(loader: Callable[[bytes], Any] | str) -> str:
    if isinstance(loader, str):
        return loader
    return f"{getattr(loader, '__module__', '?')}:{getattr(loader, '__qualname__', repr(loader))}"


def _cached_emulator(key: str, blob: bytes, loader: Callable[[bytes], Any] | str) -> Any:
    """The emulator of ``key``, loaded from ``blob`` the first time in this process."""
    with _CACHE_LOCK:   # held while loading, so concurrent tasks of a worker load it once
        em = _CACHE.get(key)
        if em is None:
            em = _resolve_loader(loader)(blob)
            _CACHE[key] = em
            _LOADS[key] += 1
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key)
        return em


def _propose_task(blob: bytes, key: str, loader, basin_idx: np.ndarray, n_params: int, senses: tuple[str, ...],
                  n_proposals: int, kwargs: dict[str, Any]) -> Proposals:
    em = _cached_emulator(key, blob, loader)
    return propose(em.predict, basin_idx, n_params, senses, n_proposals, **kwargs)


def propose_on_dask(client, emulator_blob: bytes, loader: Callable[[bytes], Any] | str, basin_idx: np.ndarray,
                    n_params: int, senses: Sequence[str], n_proposals: int = ProposalSettings.n_proposals, *,
                    basins_per_task: int | None = None, progress: bool = True,
                    existing: Sequence[np.ndarray | None] | None = None,
                    existing_scores: Sequence[np.ndarray | None] | None = None,
                    fixed_mask: np.ndarray | None = None, fixed_values: np.ndarray | None = None,
                    **kwargs: Any) -> Proposals:
    """:func:`~lsegeo.optimise.proposals.propose` on dask workers, one task per group of basins.

    Parameters
    ----------
    client : distributed.Client
    emulator_blob : bytes
        The emulator, as ``emulator.to_bytes()`` gives it.
    loader : callable or str
        Rebuilds the emulator from the bytes on a worker: a picklable function, or
        ``"module:function"`` (e.g. ``"lsegeo.emulators:load_bytes"``) imported on the worker.
        The emulator must have ``predict(basin_idx, u)``.
    basin_idx, n_params, senses, n_proposals
        As for :func:`~lsegeo.optimise.proposals.propose`.
    basins_per_task : int, optional
        Basins per task; default about two tasks per worker thread.
    progress : bool
        Show a progress bar (tqdm, on stderr) over the basins done.
    existing, existing_scores, fixed_mask, fixed_values
        As for :func:`~lsegeo.optimise.proposals.propose`, split by basin into the tasks.
    **kwargs
        Further keyword arguments of :func:`~lsegeo.optimise.proposals.propose`
        (``algorithm``, ``pop_size``, ``n_gen``, ``n_restarts``, ``seed``, ``min_distance``,
        ``sampling``, ``engine``, ``predict_kwargs``, ``local_share``, ``local_anchors``,
        ``local_candidates``, ``local_radius``); defaults of
        :class:`~lsegeo.optimise.settings.ProposalSettings`.

    Returns
    -------
    Proposals
        For the basins in the order given; equal to :func:`~lsegeo.optimise.proposals.propose`
        on all basins at once, except ``n_predict_calls``, which is summed over the tasks.

    Raises
    ------
    TypeError
        An unknown keyword argument.
    ValueError, UnknownNameError
        As :func:`~lsegeo.optimise.proposals.propose`, checked before anything is shipped.

    Notes
    -----
    The tasks of a worker share its emulator; with several threads per worker they call
    ``predict`` concurrently, so the emulator must allow that (XGBoost ``inplace_predict``,
    scikit-learn and PyTorch inference do).
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    basin_idx = np.asarray(basin_idx)
    n = len(basin_idx)
    unknown = set(kwargs) - set(_TASK_KWARGS)
    if unknown:
        raise TypeError(f"propose_on_dask got unexpected keyword arguments {sorted(unknown)}")
    # validate everything here, before anything is shipped
    engine = kwargs.get("engine", ProposalSettings.engine)
    ENGINES.check(engine)
    s = make_setup(basin_idx, n_params, senses, n_proposals, existing=existing, fixed_mask=fixed_mask,
                   fixed_values=fixed_values, existing_scores=existing_scores,
                   **{"seed": None, **{k: v for k, v in kwargs.items() if k != "engine"}})
    if n == 0:
        return empty_proposals(s, engine, s.n_proposals + s.n_local)
    if basins_per_task is None:
        threads = sum(client.nthreads().values()) or 1
        basins_per_task = max(1, math.ceil(n / (2 * threads)))
    if basins_per_task < 1:
        raise ValueError(f"basins_per_task must be at least 1, got {basins_per_task}")

    if isinstance(emulator_blob, memoryview | bytearray):
        emulator_blob = bytes(emulator_blob)
    key = f"{_loader_name(loader)}:{hashlib.blake2b(emulator_blob, digest_size=20).hexdigest()}"
    # a key of its own per call (hash=False): with the content hash as key, a call made right after
    # another with the same emulator could see the key released under it ("lost dependencies")
    blob_future = client.scatter(emulator_blob, broadcast=True, hash=False)
    mask = None if fixed_mask is None else np.broadcast_to(np.asarray(fixed_mask, bool), (n, int(n_params)))
    values = None if fixed_values is None else np.broadcast_to(np.asarray(fixed_values, float), (n, int(n_params)))

    groups = [np.arange(i, min(i + basins_per_task, n)) for i in range(0, n, basins_per_task)]
    logger.debug("proposals for %d basins in %d tasks of up to %d basins", n, len(groups), basins_per_task)
    futures = {}
    for g, pos in enumerate(groups):
        kw = dict(kwargs)
        if existing is not None:
            kw["existing"] = [existing[i] for i in pos]
        if existing_scores is not None:
            kw["existing_scores"] = [existing_scores[i] for i in pos]
        if mask is not None:
            kw["fixed_mask"] = np.ascontiguousarray(mask[pos])
        if values is not None:
            kw["fixed_values"] = np.ascontiguousarray(values[pos])
        fut = client.submit(_propose_task, blob_future, key, loader, basin_idx[pos], int(n_params),
                            tuple(senses), int(n_proposals), kw, pure=False)
        futures[fut] = g
    results: list[Proposals | None] = [None] * len(groups)
    try:
        with tqdm(total=n, unit="basin", desc="optimising", file=sys.stderr, disable=not progress) as bar:
            for fut in as_completed(list(futures)):
                g = futures[fut]
                results[g] = fut.result()
                bar.update(len(groups[g]))
    finally:
        for fut in futures:
            fut.release()
        blob_future.release()
    return Proposals.concatenate(results)  # type: ignore[arg-type]
