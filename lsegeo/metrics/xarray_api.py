"""The scores on xarray DataArrays: the kernels wrapped with :func:`xarray.apply_ufunc`.

``kge(sim, obs, dim="time")``, ``nse(...)``, ... and :func:`evaluate` take DataArrays and the
name of the time dimension, reduce it with the numpy kernels of :mod:`lsegeo.metrics.kernels`
(``dask="parallelized"``, so they stay lazy on dask-backed arrays) and return results named
after the objective with its ``units`` and ``long_name`` (from
:data:`lsegeo.metrics.objectives.OBJECTIVES`). Other dimensions broadcast by name, e.g.
``sim(member, basin, time)`` against ``obs(basin, time)``. The conventions on missing days and
degenerate series are those of the kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import xarray as xr

from lsegeo.metrics.kernels import DEFAULT_MIN_VALID, score_all
from lsegeo.metrics.objectives import default_names, get_objective

__all__ = [
    "evaluate",
    "kge",
    "kgeprime",
    "nkgeprime",
    "nse",
    "lognse",
    "mae",
    "rmse",
    "monthly_mean_maxabs",
]


def _check_names(names: Iterable[str] | None) -> list[str]:
    if names is None:
        return default_names()
    if isinstance(names, str):
        names = [names]
    names = list(names)
    for n in names:
        get_objective(n)
    return names


def _month_of(sim: xr.DataArray, dim: str, month) -> xr.DataArray:
    if month is not None:
        if isinstance(month, xr.DataArray):
            m = month
        else:
            m = xr.DataArray(np.asarray(month), dims=[dim])
        if m.dims != (dim,):
            raise ValueError(f"month must be 1-d along {dim!r}, got dims {m.dims}")
        return m
    if dim not in sim.coords or not np.issubdtype(sim[dim].dtype, np.datetime64):
        raise ValueError(
            "the monthly score needs `month`, or a datetime coordinate "
            f"{dim!r} on sim to take it from"
        )
    return sim[dim].dt.month.reset_coords(drop=True)


def _apply(
    sim: xr.DataArray,
    obs: xr.DataArray,
    names: list[str],
    dim: str,
    month,
    min_valid: int,
) -> list[xr.DataArray]:
    if not isinstance(sim, xr.DataArray) or not isinstance(obs, xr.DataArray):
        raise TypeError("sim and obs must be xarray.DataArray (use the *_np kernels for arrays)")
    for what, da in (("sim", sim), ("obs", obs)):
        if dim not in da.dims:
            raise ValueError(f"{what} has no dimension {dim!r} (dims {da.dims})")
    needs_month = any(get_objective(n).needs_month for n in names)
    args = [sim, obs]
    core = [[dim], [dim]]
    if needs_month:
        args.append(_month_of(sim, dim, month))
        core.append([dim])

    def kernel(s, o, m=None):
        res = score_all(s, o, m, names, min_valid=min_valid)
        if len(names) == 1:
            return res[names[0]]
        return tuple(res[n] for n in names)

    out = xr.apply_ufunc(
        kernel,
        *args,
        input_core_dims=core,
        output_core_dims=[[] for _ in names],
        dask="parallelized",
        output_dtypes=[np.float64] * len(names),
        dask_gufunc_kwargs={"allow_rechunk": True},
        join="exact",
    )
    if len(names) == 1:
        out = (out,)
    results = []
    for n, da in zip(names, out, strict=True):
        o = get_objective(n)
        da = da.rename(n)
        da.attrs = {"long_name": o.long_name, "units": o.units}
        results.append(da)
    return results


def evaluate(
    sim: xr.DataArray,
    obs: xr.DataArray,
    names: Iterable[str] | None = None,
    *,
    dim: str = "time",
    month=None,
    min_valid: int = DEFAULT_MIN_VALID,
) -> xr.Dataset:
    """Several scores of DataArrays at once (lazy on dask), as a Dataset of one variable each.

    Parameters
    ----------
    sim, obs : DataArray
        Simulated and observed flow, both with dimension ``dim``; other dimensions broadcast
        by name (e.g. ``sim(member, basin, time)`` against ``obs(basin, time)``). Their ``dim``
        coordinates must be equal (``join="exact"``).
    names : iterable of str, optional
        Registered objectives (:data:`lsegeo.metrics.objectives.OBJECTIVES`); all by default
        (the monthly score only when ``month`` is given or ``sim[dim]`` is a datetime
        coordinate).
    dim : str, default "time"
        The time dimension reduced by the scores. A dask array chunked along it is rechunked
        to one chunk along ``dim`` (each score needs the whole series).
    month : DataArray or array_like of int, optional
        Calendar month of each day for the monthly score; by default ``sim[dim].dt.month``.
    min_valid : int, default 2
        Fewest valid days; fewer gives NaN.

    Returns
    -------
    Dataset
        One variable per score, with ``units`` and ``long_name``.

    Raises
    ------
    lsegeo.errors.UnknownNameError
        An unknown objective name (a ``KeyError``).
    ValueError
        ``dim`` missing from an input, or the monthly score without a month to take.
    TypeError
        ``sim`` or ``obs`` is not a DataArray.
    """
    if names is None and month is None and not (
        dim in sim.coords and np.issubdtype(sim[dim].dtype, np.datetime64)
    ):
        names = default_names(with_month=False)
    names = _check_names(names)
    return xr.Dataset({da.name: da for da in _apply(sim, obs, names, dim, month, min_valid)})


def _make_xr(name: str) -> Callable[..., xr.DataArray]:
    kern = get_objective(name).func
    first = (kern.__doc__ or "").strip().splitlines()[0]

    def f(
        sim: xr.DataArray,
        obs: xr.DataArray,
        dim: str = "time",
        *,
        month=None,
        min_valid: int = DEFAULT_MIN_VALID,
    ) -> xr.DataArray:
        return _apply(sim, obs, [name], dim, month, min_valid)[0]

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"""{first}

    xarray version of :func:`{kern.__name__}` (see it for the formula), built with
    :func:`xarray.apply_ufunc` (``dask="parallelized"``): lazy on dask-backed inputs.

    Parameters
    ----------
    sim, obs : DataArray
        Simulated and observed flow, both with dimension ``dim``; the other dimensions
        broadcast by name. The ``dim`` coordinates must be equal.
    dim : str, default "time"
        The dimension reduced (rechunked to a single chunk if dask-chunked along it).
    month : DataArray or array_like of int, optional
        Only for ``monthly_mean_maxabs``: calendar month of each day, by default
        ``sim[dim].dt.month``.
    min_valid : int, default 2
        Fewest days valid in both; fewer gives NaN.

    Returns
    -------
    DataArray
        Named ``{name!r}``, the dimensions of ``sim`` and ``obs`` without ``dim``, attrs
        ``units={get_objective(name).units!r}`` and ``long_name``.
    """
    f.__module__ = __name__
    return f


kge = _make_xr("kge")
kgeprime = _make_xr("kgeprime")
nkgeprime = _make_xr("nkgeprime")
nse = _make_xr("nse")
lognse = _make_xr("lognse")
mae = _make_xr("mae")
rmse = _make_xr("rmse")
monthly_mean_maxabs = _make_xr("monthly_mean_maxabs")
