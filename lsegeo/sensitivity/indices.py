"""Arrays of sensitivity indices: what every part of the screening accepts, and their normalisation.

Every step of :mod:`lsegeo.sensitivity` takes first-order indices ``S1`` over ``basin`` (or
``cluster``) and ``param``, either as a DataArray or as a Dataset holding an ``S1`` variable.
:func:`as_indices` turns either into the DataArray, :func:`str_coord` makes a coordinate plain
Python strings (zarr stores give NumPy ``StringDType`` values that do not compare with ``str``),
and :func:`normalise_indices` clips and normalises indices so that they can be averaged over
basins and compared between basins.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from lsegeo.conventions import PARAM

__all__ = ["as_indices", "str_coord", "normalise_indices"]


def as_indices(S: xr.Dataset | xr.DataArray, var: str = "S1") -> xr.DataArray:
    """The indices of ``S`` as a DataArray with a ``param`` dimension.

    Parameters
    ----------
    S : xarray.Dataset or xarray.DataArray
        Indices, or a Dataset holding them as variable ``var``.
    var : str
        The variable of a Dataset.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    ValueError
        The Dataset has no ``var``, or the indices have no ``param`` dimension.
    TypeError
        ``S`` is neither a Dataset nor a DataArray.
    """
    if isinstance(S, xr.Dataset):
        if var not in S:
            raise ValueError(f"the dataset has no variable {var!r}")
        S = S[var]
    if not isinstance(S, xr.DataArray):
        raise TypeError(f"expected an xarray Dataset or DataArray, got {type(S).__name__}")
    if PARAM not in S.dims:
        raise ValueError(f"the indices need a 'param' dimension, got dims {S.dims}")
    return S


def str_coord(da: xr.DataArray, dim: str) -> xr.DataArray:
    """The same array with its ``dim`` coordinate as Python strings (object dtype)."""
    return da.assign_coords({dim: np.array([str(v) for v in da[dim].values], dtype=object)})


def normalise_indices(S1: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """First-order indices clipped at 0 and divided by their sum over parameters.

    Estimates of a non-influential parameter's index scatter around 0; clipping keeps them from
    cancelling real sensitivity.

    Parameters
    ----------
    S1 : xarray.Dataset or xarray.DataArray
        Indices with a ``param`` dimension (a Dataset's ``S1``).

    Returns
    -------
    xarray.DataArray
        ``S1_norm``, summing to 1 over ``param``; NaN where the clipped indices sum to 0 or any
        of them is NaN.
    """
    s = as_indices(S1).clip(min=0)
    total = s.sum(PARAM, skipna=False)
    return (s / total.where(total > 0)).rename("S1_norm")
