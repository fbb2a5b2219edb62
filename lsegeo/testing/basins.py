"""Synthetic basins: attributes, forcing with a seasonal cycle, and flow from HBV with known parameters.

Everything is drawn from one seed, so the same call gives the same numbers on every machine, and
is small (a few basins, a few years: kilobytes), so unit tests run in milliseconds. The layout is
that of a basins store made by :func:`lsegeo.ingest.camels.ingest_camels`: an ``attributes`` group
with the 27 study attributes (:data:`lsegeo.emulators.features.STUDY_ATTRIBUTES`) and ``lat``,
``lon``, ``area``, ``huc_02`` as coordinates; a ``forcing`` group ``(basin, time)`` with the
variables the HBV model reads; and an ``observed`` group with ``qobs`` in mm day-1.

How the series are made
-----------------------
* **Temperature** (degC): ``T(t) = T0 + A sin(2 pi (doy - 110) / 365.25) + e``, ``e`` an AR(1)
  anomaly (lag-one correlation 0.7, standard deviation 2 degC); ``tmax = T + 5``, ``tmin = T - 5``.
* **Precipitation** (mm day-1): a wet day with probability ``0.35 (1 + 0.3 s(t))``, its amount
  exponential with a per-basin mean ``p_wet`` (``s(t)`` a per-basin seasonal phase).
* **PET** (mm day-1): ``max(0, PET0 (1 + 0.8 sin(2 pi (doy - 110) / 365.25)))``.
* **Observed flow**: the embedded HBV model (:func:`lsegeo.models.registry.get_model`) run with
  each basin's true parameters (:attr:`SyntheticBasins.true_params`, drawn in the middle 60 % of
  each parameter's range in the unit cube), times log-normal noise ``exp(sigma N(0, 1))``.

The climate attributes (``p_mean``, ``pet_mean``, ``aridity``, ``frac_snow``, ...) are computed
from the synthetic series, so they agree with the forcing; the others are drawn in plausible
CAMELS ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.conventions import BASIN, PARAM, TIME
from lsegeo.models.registry import get_model

__all__ = ["SyntheticBasins", "synthetic_basins", "write_basins_store", "LAND_COVERS"]

#: the classes of the categorical attribute ``dom_land_cover``
LAND_COVERS = ("Evergreen Needleleaf Forest", "Mixed Forests", "Croplands", "Grasslands")

_FIRST_GAUGE = 90000001  # synthetic gauge ids: 8 digits, outside the CAMELS-US range of ids
_PHASE_DOY = 110.0


@dataclass(frozen=True)
class SyntheticBasins:
    """The groups of a synthetic basins store, in memory, and the truth they were made from.

    Attributes
    ----------
    attributes : xarray.Dataset
        ``(basin,)`` attributes, as the ``attributes`` group of a basins store.
    forcing : xarray.Dataset
        ``(basin, time)`` float32 forcing, as the ``forcing`` group.
    observed : xarray.Dataset
        ``qobs(basin, time)`` float32 mm day-1, ``has_observations`` and ``n_observed_days``,
        as the ``observed`` group; withheld basins have all-NaN ``qobs``.
    true_params : xarray.DataArray
        ``(basin, param)`` parameter values the observed flow was simulated with.
    model : str
        Name of the model adapter that made the flow.
    """

    attributes: xr.Dataset
    forcing: xr.Dataset
    observed: xr.Dataset
    true_params: xr.DataArray
    model: str = "hbv"

    @property
    def basins(self) -> list[str]:
        """Gauge ids, in store order."""
        return [str(b) for b in self.forcing[BASIN].values]

    @property
    def observed_basins(self) -> list[str]:
        """Gauge ids of the basins that have observations (not withheld)."""
        has = self.observed["has_observations"].values
        return [b for b, h in zip(self.basins, has, strict=True) if h]

    def forcing_arrays(self, basin: str) -> dict[str, np.ndarray]:
        """One basin's forcing as float64 ``(time,)`` arrays, the input of ``ModelAdapter.run``."""
        one = self.forcing.sel({BASIN: basin})
        return {v: one[v].values.astype("float64") for v in self.forcing.data_vars}


def _seasonal(doy: np.ndarray) -> np.ndarray:
    return np.sin(2.0 * np.pi * (doy - _PHASE_DOY) / 365.25)


def _forcing_of_basin(rng: np.random.Generator, doy: np.ndarray, t0: float, amp: float, p_wet: float,
                      pet0: float, phase: float) -> dict[str, np.ndarray]:
    n = doy.size
    anomaly = np.empty(n)
    shocks = rng.normal(0.0, 2.0 * np.sqrt(1.0 - 0.7 ** 2), n)
    anomaly[0] = rng.normal(0.0, 2.0)
    for i in range(1, n):
        anomaly[i] = 0.7 * anomaly[i - 1] + shocks[i]
    temp = t0 + amp * _seasonal(doy) + anomaly
    wet_prob = 0.35 * (1.0 + 0.3 * np.sin(2.0 * np.pi * doy / 365.25 + phase))
    prcp = np.where(rng.random(n) < wet_prob, rng.exponential(p_wet, n), 0.0)
    pet = np.maximum(0.0, pet0 * (1.0 + 0.8 * _seasonal(doy)))
    return {"prcp": prcp, "tmax": temp + 5.0, "tmin": temp - 5.0, "pet": pet}


def _attributes(rng: np.random.Generator, basins: list[str], forcing: dict[str, np.ndarray],
                doy: np.ndarray) -> xr.Dataset:
    """The 27 study attributes, the climate ones computed from the forcing ``(basin, time)``."""
    nb = len(basins)
    prcp, pet = forcing["prcp"], forcing["pet"]
    temp = 0.5 * (forcing["tmax"] + forcing["tmin"])
    p_mean, pet_mean = prcp.mean(axis=1), pet.mean(axis=1)
    wet = prcp > 0.0
    summer = (doy >= 152) & (doy < 244)
    winter = (doy < 60) | (doy >= 335)
    high = prcp >= 5.0 * p_mean[:, None]
    u = rng.random
    numeric = {
        "elev_mean": 100.0 + 2500.0 * u(nb),
        "slope_mean": 1.0 + 150.0 * u(nb),
        "p_mean": p_mean,
        "pet_mean": pet_mean,
        "aridity": pet_mean / p_mean,
        "p_seasonality": (prcp[:, summer].mean(axis=1) - prcp[:, winter].mean(axis=1)) / p_mean,
        "frac_snow": (prcp * (temp < 0.0)).sum(axis=1) / prcp.sum(axis=1),
        "high_prec_freq": 365.25 * high.mean(axis=1),
        "high_prec_dur": 1.0 + 0.3 * u(nb),
        "low_prec_freq": 365.25 * (~wet).mean(axis=1),
        "low_prec_dur": 2.0 + 3.0 * u(nb),
        "frac_forest": u(nb),
        "lai_max": 1.0 + 4.0 * u(nb),
        "lai_diff": 0.5 + 3.5 * u(nb),
        "dom_land_cover_frac": 0.4 + 0.6 * u(nb),
        "soil_depth_pelletier": 0.5 + 40.0 * u(nb),
        "soil_depth_statsgo": 0.5 + u(nb),
        "soil_porosity": 0.35 + 0.15 * u(nb),
        "soil_conductivity": 0.5 + 10.0 * u(nb),
        "max_water_content": 0.1 + 1.5 * u(nb),
        "carbonate_rocks_frac": u(nb),
        "geol_permeability": -16.0 + 4.0 * u(nb),
    }
    sand, silt = 10.0 + 60.0 * u(nb), 10.0 + 40.0 * u(nb)
    numeric.update(sand_frac=sand, silt_frac=silt, clay_frac=100.0 - sand - silt)
    data = {k: (BASIN, np.asarray(v, dtype="float64")) for k, v in numeric.items()}
    data["dom_land_cover"] = (BASIN, np.array([LAND_COVERS[i] for i in rng.integers(0, len(LAND_COVERS), nb)],
                                              dtype=object))
    data["gauge_name"] = (BASIN, np.array([f"Synthetic Creek {i + 1}" for i in range(nb)], dtype=object))
    coords = {BASIN: (BASIN, np.array(basins, dtype=object)),
              "lat": (BASIN, 30.0 + 18.0 * u(nb), {"standard_name": "latitude", "units": "degrees_north"}),
              "lon": (BASIN, -122.0 + 52.0 * u(nb), {"standard_name": "longitude", "units": "degrees_east"}),
              "area": (BASIN, 10.0 ** (1.5 + 2.0 * u(nb)), {"units": "km2"}),
              "huc_02": (BASIN, rng.integers(1, 19, nb).astype("float64"))}
    return xr.Dataset(data, coords=coords, attrs={"title": "synthetic basin attributes"})


def synthetic_basins(n_basins: int = 5, *, start: str = "2000-01-01", end: str = "2002-12-31", seed: int = 0,
                     withheld: Sequence[int] = (), noise: float = 0.1, model: str = "hbv") -> SyntheticBasins:
    """Make seeded synthetic basins: attributes, forcing, and observed flow from known parameters.

    Parameters
    ----------
    n_basins : int
        Number of basins; gauge ids ``"90000001"``, ``"90000002"``, ...
    start, end : str
        First and last day (inclusive) of the daily series.
    seed : int
        Seed of everything drawn (one :func:`numpy.random.default_rng`).
    withheld : sequence of int
        Positions of basins whose observations are withheld (``qobs`` all NaN,
        ``has_observations`` false), as CAMELS basins without streamflow.
    noise : float
        Standard deviation ``sigma`` of the log-normal observation noise (0: the model's flow).
    model : str
        Registered model adapter that simulates the flow (:func:`lsegeo.models.registry.get_model`);
        the synthetic forcing holds HBV's variables (``prcp``, ``tmax``, ``tmin``, ``pet``).

    Returns
    -------
    SyntheticBasins

    Raises
    ------
    ValueError
        ``n_basins < 1``, an empty period, or a ``withheld`` position out of range.
    """
    if n_basins < 1:
        raise ValueError(f"n_basins must be at least 1, got {n_basins}")
    time = pd.date_range(start, end, freq="D", name=TIME)
    if len(time) == 0:
        raise ValueError(f"the period {start} to {end} is empty")
    bad = [i for i in withheld if not 0 <= i < n_basins]
    if bad:
        raise ValueError(f"withheld positions {bad} are outside 0..{n_basins - 1}")
    rng = np.random.default_rng(seed)
    basins = [f"{_FIRST_GAUGE + i:08d}" for i in range(n_basins)]
    doy = time.day_of_year.to_numpy()
    climate = {"t0": rng.uniform(-2.0, 14.0, n_basins), "amp": rng.uniform(6.0, 14.0, n_basins),
               "p_wet": rng.uniform(4.0, 12.0, n_basins), "pet0": rng.uniform(1.5, 3.5, n_basins),
               "phase": rng.uniform(0.0, 2.0 * np.pi, n_basins)}
    per_basin = [_forcing_of_basin(rng, doy, *(climate[k][b] for k in ("t0", "amp", "p_wet", "pet0", "phase")))
                 for b in range(n_basins)]
    forcing = {v: np.stack([f[v] for f in per_basin]) for v in per_basin[0]}

    adapter = get_model(model)
    space = adapter.space
    u_true = rng.uniform(0.2, 0.8, (n_basins, len(space)))
    params = space.from_unit(u_true)
    qobs = np.empty((n_basins, len(time)))
    for b in range(n_basins):
        q = adapter.run({v: forcing[v][b] for v in adapter.forcing_variables}, params[b][None, :])[0]
        qobs[b] = q * np.exp(noise * rng.standard_normal(len(time)))
    has_obs = np.ones(n_basins, dtype=bool)
    has_obs[list(withheld)] = False
    qobs[~has_obs] = np.nan

    coords = {BASIN: (BASIN, np.array(basins, dtype=object)), TIME: (TIME, time)}
    units = {"prcp": "mm day-1", "tmax": "degC", "tmin": "degC", "pet": "mm day-1"}
    forcing_ds = xr.Dataset({v: ((BASIN, TIME), a.astype("float32"), {"units": units.get(v, "")})
                             for v, a in forcing.items()}, coords=coords,
                            attrs={"title": "synthetic forcing with a seasonal cycle"})
    counts = np.isfinite(qobs).sum(axis=1).astype("int32")
    observed = xr.Dataset(
        {"qobs": ((BASIN, TIME), qobs.astype("float32"), {"units": "mm day-1"}),
         "has_observations": (BASIN, has_obs), "n_observed_days": (BASIN, counts)},
        coords=coords, attrs={"title": f"synthetic observed flow: {model} with known parameters, noise {noise}"})
    attributes = _attributes(rng, basins, forcing, doy)
    attributes["has_forcing"] = (BASIN, np.ones(n_basins, dtype=bool))
    attributes["has_observations"] = (BASIN, has_obs)
    true = xr.DataArray(params, dims=(BASIN, PARAM), coords={BASIN: np.array(basins, dtype=object),
                                                            PARAM: np.array(space.names, dtype=object)},
                        name="true_params", attrs={"long_name": "parameters the observed flow was made with"})
    return SyntheticBasins(attributes=attributes, forcing=forcing_ds, observed=observed, true_params=true,
                           model=model)


def write_basins_store(basins: SyntheticBasins, path: str | Path, *, overwrite: bool = False,
                       chunk_basins: int = 2) -> Path:
    """Write synthetic basins as a basins store (zarr v3), through :func:`lsegeo.io.stores.write_groups`.

    Parameters
    ----------
    basins : SyntheticBasins
        From :func:`synthetic_basins`.
    path : path-like
        The store to create.
    overwrite : bool
        Replace an existing store.
    chunk_basins : int
        Basins per zarr chunk of the ``forcing`` and ``observed`` groups (whole series per chunk).

    Returns
    -------
    pathlib.Path
        ``path``; the store has the groups ``attributes``, ``forcing`` and ``observed`` and the
        root attribute ``lsegeo_store_kind = "basins"``.
    """
    from lsegeo import provenance
    from lsegeo.io.stores import write_groups

    nb = basins.forcing.sizes[BASIN]
    time = basins.forcing[TIME].values
    attrs = provenance.product_attrs(
        title="lsegeo basins store: synthetic basins",
        summary=(f"{nb} synthetic basins, {str(time[0])[:10]} to {str(time[-1])[:10]}: seasonal forcing and "
                 f"{basins.model} flow with known parameters (lsegeo.testing)"),
        step="testing synthetic basins", call="lsegeo.testing.write_basins_store",
        extra={"lsegeo_store_kind": "basins", "time_coverage_start": str(time[0])[:10],
               "time_coverage_end": str(time[-1])[:10]})
    chunks = (min(chunk_basins, nb), len(time))
    encoding = {group: {v: {"chunks": chunks} for v, a in ds.data_vars.items() if a.dims == (BASIN, TIME)}
                for group, ds in (("forcing", basins.forcing), ("observed", basins.observed))}
    return write_groups({"attributes": basins.attributes, "forcing": basins.forcing,
                         "observed": basins.observed}, path, attrs=attrs, inputs={}, overwrite=overwrite,
                        encoding=encoding)
