"""Donor basins: the calibrated sets of gauged basins near or like an ungauged target.

Two classic transfers (Oudin et al. 2008, doi:10.1029/2007WR006240; Parajka et al. 2013,
doi:10.5194/hess-17-1783-2013):

* spatial proximity (:func:`nearest_donors`): the calibrated sets of the gauged basins whose
  locations are closest, by great-circle distance between basin centroids;
* physical similarity (:func:`similar_donors`): the calibrated sets of the gauged basins closest
  in attribute space, each attribute standardised by its mean and standard deviation over the
  donors (Oudin et al. 2008, equation 2, weight every attribute equally).

Both return the k donors per target, nearest first; what becomes the point estimate is the
method's choice (:mod:`lsegeo.regionalize.methods`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lsegeo.errors import InputFormatError

__all__ = ["EARTH_RADIUS_KM", "unit_vectors", "nearest_donors", "standardized_attributes", "similar_donors"]

#: mean Earth radius (IUGG), km
EARTH_RADIUS_KM = 6371.0088


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """``(n, 3)`` unit vectors of points on the sphere (degrees in)."""
    la, lo = np.radians(np.asarray(lat, dtype=np.float64)), np.radians(np.asarray(lon, dtype=np.float64))
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def nearest_donors(donor_lat: np.ndarray, donor_lon: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                   k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The k spatially nearest donors of each target.

    Parameters
    ----------
    donor_lat, donor_lon : numpy.ndarray
        ``(n_donors,)`` donor locations, degrees.
    lat, lon : numpy.ndarray
        ``(n,)`` target locations, degrees.
    k : int
        Donors per target (at most ``n_donors``).

    Returns
    -------
    index : numpy.ndarray
        ``(n, k)`` int donor indices, nearest first.
    distance_km : numpy.ndarray
        ``(n, k)`` great-circle distances, km (chord distance converted:
        ``d = 2 R asin(c / 2)``).

    Raises
    ------
    ValueError
        No donors, or non-finite locations.
    """
    from scipy.spatial import cKDTree

    if len(donor_lat) == 0:
        raise ValueError("there are no donor basins")
    for name, v in (("donor_lat", donor_lat), ("donor_lon", donor_lon), ("lat", lat), ("lon", lon)):
        if not np.isfinite(np.asarray(v, dtype=np.float64)).all():
            raise ValueError(f"{name} has non-finite values")
    k = min(int(k), len(donor_lat))
    tree = cKDTree(unit_vectors(donor_lat, donor_lon))
    chord, idx = tree.query(unit_vectors(lat, lon), k=k)
    chord, idx = np.atleast_2d(chord.reshape(len(lat), k)), np.atleast_2d(idx.reshape(len(lat), k))
    return idx.astype(np.int64), 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


def standardized_attributes(donors: pd.DataFrame, targets: pd.DataFrame,
                            names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Numeric attributes standardised by the donors' mean and standard deviation.

    Categorical attributes are left out (no distance between classes); a missing value is
    replaced by the donors' mean (0 after standardising), so it adds nothing to a distance.

    Parameters
    ----------
    donors, targets : pandas.DataFrame
        One row per basin (or cell), one column per attribute (CAMELS names; ``area_gages2`` may
        be the column ``area``).
    names : sequence of str

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(n_donors, m)`` and ``(n_targets, m)`` float64, ``m`` the numeric attributes.

    Raises
    ------
    InputFormatError
        An attribute is missing from the donors or the targets.
    ValueError
        No numeric attribute among ``names``.
    """
    from lsegeo.emulators.features import ATTRIBUTE_ALIASES

    def column(frame: pd.DataFrame, name: str) -> pd.Series | None:
        for key in (name, ATTRIBUTE_ALIASES.get(name)):
            if key is not None and key in frame.columns:
                return frame[key]
        return None

    cols_d, cols_t = [], []
    for name in names:
        dcol, tcol = column(donors, name), column(targets, name)
        if dcol is None or tcol is None:
            where = "donor basins" if dcol is None else "targets"
            raise InputFormatError(f"the {where}", None, f"attribute {name!r} is missing from the {where}")
        d = pd.to_numeric(dcol, errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(d).all():
            continue  # categorical (or empty): not part of the distance
        t = pd.to_numeric(tcol, errors="coerce").to_numpy(dtype=np.float64)
        mean, std = np.nanmean(d), np.nanstd(d)
        std = std if std > 0 else 1.0
        cols_d.append(np.nan_to_num((d - mean) / std))
        cols_t.append(np.nan_to_num((t - mean) / std))
    if not cols_d:
        raise ValueError(f"none of the attributes {list(names)} is numeric")
    return np.column_stack(cols_d), np.column_stack(cols_t)


def similar_donors(donors: pd.DataFrame, targets: pd.DataFrame, names: Sequence[str],
                   k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The k donors most similar to each target in standardised attribute space.

    Parameters
    ----------
    donors, targets : pandas.DataFrame
        Raw attributes (:func:`standardized_attributes`).
    names : sequence of str
        The attributes that define similarity (the emulator's, by default).
    k : int
        Donors per target.

    Returns
    -------
    index : numpy.ndarray
        ``(n, k)`` donor indices, most similar first.
    distance : numpy.ndarray
        ``(n, k)`` Euclidean distances in standardised units.
    """
    from scipy.spatial import cKDTree

    zd, zt = standardized_attributes(donors, targets, names)
    k = min(int(k), len(zd))
    dist, idx = cKDTree(zd).query(zt, k=k)
    return np.asarray(idx).reshape(len(zt), k).astype(np.int64), np.asarray(dist).reshape(len(zt), k)
