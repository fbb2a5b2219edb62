"""What a regionalization method learns from: the calibrated (training) basins, and nothing else.

A :class:`Training` gathers, for the basins a method may see:

* their raw attributes (one row per basin, CAMELS names) and their locations (basin centroids
  from the CAMELS polygons where known, else the gauge);
* their calibrated parameter sets (the best member of a calibration store, chosen on the
  calibration period) and the scores those sets had on every period;
* the emulator's training rows (:class:`~lsegeo.emulators.features.TrainingSet`: every member
  simulated in these basins), from which :func:`fit_emulators` fits the large-sample emulators.

:meth:`Training.restrict` keeps the training basins of a cross-validation fold, so that neither
the donors nor the emulator of a fold ever see a held-out basin (Tang, Wood & Swenson 2025,
section 2.5; the same rule as the differentiable-parameter-learning studies of
``regionalization_anchors.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lsegeo.design import BOUND_ROUNDING, ParameterSpace
from lsegeo.errors import ConfigError, InputFormatError

__all__ = ["Training", "load_training", "fit_emulators", "emulator_skill", "basin_frame", "basin_locations"]

logger = logging.getLogger(__name__)

#: the CAMELS basin polygons (with centroids) under the data directory
CAMELS_POLYGONS = "ctsm_camels/basins_627.gpkg"


@dataclass
class Training:
    """The training basins of a regionalization.

    Attributes
    ----------
    basins : list of str
        Gauge ids of the training basins (those with a calibrated set).
    attributes : pandas.DataFrame
        Raw attributes, index ``basins``.
    lat, lon : numpy.ndarray
        ``(n,)`` basin locations, degrees north / east.
    calibrated : numpy.ndarray
        ``(n, n_params)`` calibrated parameter values (model units).
    calibrated_scores : pandas.DataFrame
        Score of each calibrated set, index ``basins``, columns ``"<objective>/<period>"``.
    space : ParameterSpace
    ts : TrainingSet or None
        The emulator's rows over ``basins`` (None when no emulator is needed).
    store : pathlib.Path or None
        The calibration (or ensemble) store the sets come from; ``lse-select`` takes its members.
    objective, period : str
        The score that chose the calibrated sets and that the emulator predicts.
    """

    basins: list[str]
    attributes: pd.DataFrame
    lat: np.ndarray
    lon: np.ndarray
    calibrated: np.ndarray
    calibrated_scores: pd.DataFrame
    space: ParameterSpace
    ts: Any
    store: Path | None
    objective: str
    period: str

    def __len__(self) -> int:
        return len(self.basins)

    def calibration_sha256(self) -> str:
        """sha256 of what the methods learn from the store: the basins, their calibrated sets and scores.

        A product records it beside the store's own digest, which names how the store was
        made, not how far its calibration had got.
        """
        import hashlib
        import json

        h = hashlib.sha256(json.dumps([str(b) for b in self.basins]).encode())
        h.update(np.ascontiguousarray(self.calibrated, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(self.calibrated_scores.to_numpy(dtype=np.float64), dtype="<f8").tobytes())
        return h.hexdigest()

    def restrict(self, basins: Sequence[str]) -> Training:
        """The same training limited to ``basins`` (a fold's training basins), in their order.

        Raises
        ------
        InputFormatError
            A basin is not a training basin.
        """
        pos = {b: i for i, b in enumerate(self.basins)}
        unknown = [b for b in basins if b not in pos]
        if unknown:
            raise InputFormatError(str(self.store or "training"), None,
                                   f"basins {unknown[:5]} are not training basins (no calibrated set)")
        idx = np.array([pos[b] for b in basins], dtype=np.int64)
        keep = [str(b) for b in basins]
        ts = self.ts.select_basins(keep) if self.ts is not None else None
        return replace(self, basins=keep, attributes=self.attributes.iloc[idx], lat=self.lat[idx],
                       lon=self.lon[idx], calibrated=self.calibrated[idx],
                       calibrated_scores=self.calibrated_scores.iloc[idx], ts=ts)


def basin_frame(basins_store: str | Path, basins: Sequence[str] | None = None) -> pd.DataFrame:
    """Raw attributes of a basins store as a DataFrame (index gauge id; coordinates included).

    Parameters
    ----------
    basins_store : path-like
        An lsegeo basins store (group ``attributes``).
    basins : sequence of str, optional
        The rows, in this order; default every basin.

    Raises
    ------
    lsegeo.errors.UnknownBasinError
        A basin is not in the store.
    """
    from lsegeo.errors import UnknownBasinError
    from lsegeo.io.stores import open_store

    ds = open_store(basins_store, "attributes").load()
    have = [str(b) for b in ds["basin"].values]
    if basins is not None:
        missing = sorted(set(basins) - set(have))
        if missing:
            raise UnknownBasinError(f"basins {missing[:5]} are not in the basins store {basins_store}")
        ds = ds.sel(basin=list(basins))
    cols = {}
    for name in [*ds.coords, *ds.data_vars]:
        var = ds[name]
        if var.dims == ("basin",) and name != "basin":
            cols[str(name)] = var.values
    frame = pd.DataFrame(cols, index=pd.Index([str(b) for b in ds["basin"].values], name="basin"))
    return frame


def camels_polygons(data_dir: str | Path | None = None) -> Path | None:
    """The CAMELS basin polygons (:data:`CAMELS_POLYGONS`) of the data directory, or None without them.

    Parameters
    ----------
    data_dir : path-like, optional
        A configured data directory, the only place looked at; default the search of
        :func:`lsegeo.locations.resolve_data_dir`.

    Returns
    -------
    pathlib.Path or None
        The GeoPackage, or None when it is not there (the callers then look in the default
        places, and place basins without a polygon at their gauge).
    """
    from lsegeo.errors import DataNotFoundError
    from lsegeo.locations import resolve_data_dir

    try:
        return resolve_data_dir(data_dir, expect=CAMELS_POLYGONS) / CAMELS_POLYGONS
    except DataNotFoundError:
        return None


def basin_locations(frame: pd.DataFrame, gpkg: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Basin locations: polygon centroids from a CAMELS polygon file where known, else the gauge.

    Parameters
    ----------
    frame : pandas.DataFrame
        Attributes with columns ``lat`` and ``lon`` (the gauge), index gauge id.
    gpkg : path-like, optional
        Polygon file with columns ``gauge_id``, ``lat_cen``, ``lon_cen`` (the CAMELS polygons of
        ``ctsm_camels/basins_627.gpkg``); default that file in the data directory if present.

    Returns
    -------
    lat, lon : numpy.ndarray
        ``(n,)`` degrees.
    source : str
        What the locations are, for the products' metadata.
    """
    lat = frame["lat"].to_numpy(dtype=np.float64).copy()
    lon = frame["lon"].to_numpy(dtype=np.float64).copy()
    gpkg = camels_polygons() if gpkg is None else gpkg
    if gpkg is None:
        return lat, lon, "gauge locations"
    import pyogrio

    table = pyogrio.read_dataframe(gpkg, columns=["gauge_id", "lat_cen", "lon_cen"], read_geometry=False)
    cen = table.set_index(table["gauge_id"].astype(str).str.zfill(8))
    have = frame.index.isin(cen.index)
    lat[have] = cen.loc[frame.index[have], "lat_cen"].to_numpy(dtype=np.float64)
    lon[have] = cen.loc[frame.index[have], "lon_cen"].to_numpy(dtype=np.float64)
    return lat, lon, f"polygon centroids of {Path(gpkg).name} ({int(have.sum())} basins), gauge elsewhere"


def load_training(store: str | Path, basins_store: str | Path, *, objective: str = "nkgeprime",
                  period: str = "calibration", attributes: Sequence[str] | None = None,
                  basins: Sequence[str] | None = None, with_rows: bool = True,
                  gpkg: str | Path | None = None) -> Training:
    """The training basins of a calibration (or ensemble) store.

    Parameters
    ----------
    store : path-like
        A calibration store (:mod:`lsegeo.calibration`) or any ensemble store: the calibrated set
        of a basin is its best done member by ``objective`` on ``period``.
    basins_store : path-like
        The basins store with the attributes.
    objective, period : str
        The score that chooses the calibrated sets and that the emulator will predict.
    attributes : sequence of str, optional
        The emulator's attributes (default the study's 27).
    basins : sequence of str, optional
        Keep only these basins (default every basin with a calibrated set).
    with_rows : bool
        Build the emulator's training rows too.
    gpkg : path-like, optional
        Basin polygons for the locations (:func:`basin_locations`).

    Returns
    -------
    Training

    Raises
    ------
    InputFormatError
        The store has no basin with a done member, or lacks the objective or period; or a
        basin's calibrated set lies outside the store's parameter bounds (beyond a rounding).
    """
    import dask

    # small reads of local stores: in this process, not through the workers of a cluster whose client is the
    # default scheduler (one round trip per variable made a 20-basin store take seconds)
    with dask.config.set(scheduler="threads"):
        return _read_training(store, basins_store, objective, period, attributes, basins, with_rows, gpkg)


def _read_training(store: str | Path, basins_store: str | Path, objective: str, period: str,
                   attributes: Sequence[str] | None, basins: Sequence[str] | None, with_rows: bool,
                   gpkg: str | Path | None) -> Training:
    """:func:`load_training` on the current dask scheduler."""
    from lsegeo.emulators.features import STUDY_ATTRIBUTES, space_from_store, training_set
    from lsegeo.ensembles.store import DONE, open_ensemble

    ens = open_ensemble(store)
    objectives = [str(o) for o in ens["objective"].values]
    periods = [str(p) for p in ens["period"].values]
    if objective not in objectives:
        raise InputFormatError(str(store), None, f"no objective {objective!r} (it has {', '.join(objectives)})")
    if period not in periods:
        raise InputFormatError(str(store), None, f"no period {period!r} (it has {', '.join(periods)})")
    from lsegeo.metrics.objectives import get_objective

    sense = get_objective(objective).sense
    scores = ens["scores"].sel(objective=objective, period=period).values
    status = ens["status"].values
    ok = (status == DONE) & np.isfinite(scores)
    ranked = np.where(ok, scores if sense == "max" else -scores, -np.inf)
    best = np.argmax(ranked, axis=1)
    has = ok.any(axis=1)
    all_basins = [str(b) for b in ens["basin"].values]
    keep = [i for i, b in enumerate(all_basins) if has[i] and (basins is None or b in set(basins))]
    if not keep:
        raise InputFormatError(str(store), None, f"no basin has a done member with a finite {objective} on {period}")
    names = [all_basins[i] for i in keep]
    params = ens["params"].transpose("basin", "member", "param").values
    calibrated = params[keep, best[keep]]
    space = described_space(space_from_store(ens))
    check_donor_sets(calibrated, space, names, store)
    every = ens["scores"].transpose("basin", "member", "objective", "period").values
    cal_scores = {f"{o}/{p}": every[keep, best[keep], i, j]
                  for i, o in enumerate(objectives) for j, p in enumerate(periods)}
    frame = basin_frame(basins_store, names)
    lat, lon, source = basin_locations(frame, gpkg)
    ts = None
    if with_rows:
        ts = training_set(ens, basins_store, objectives=[objective], period=period,
                          attributes=list(attributes) if attributes else STUDY_ATTRIBUTES, basins=names)
    logger.info("training: %d calibrated basins of %s (%s; locations: %s)", len(names), store, objective, source)
    return Training(basins=names, attributes=frame, lat=lat, lon=lon, calibrated=calibrated,
                    calibrated_scores=pd.DataFrame(cal_scores, index=pd.Index(names, name="basin")),
                    space=space, ts=ts, store=Path(store), objective=objective, period=period)


def check_donor_sets(params: np.ndarray, space: ParameterSpace, basins: Sequence[str], source: str | Path) -> None:
    """Refuse calibrated (donor) sets outside the parameter space's bounds.

    Parameters
    ----------
    params : numpy.ndarray
        ``(basin, param)`` calibrated sets in physical units.
    space : ParameterSpace
    basins : sequence of str
        The basins of the rows.
    source : str or path-like
        The store they come from (named in the error).

    Raises
    ------
    InputFormatError
        A value is not finite or lies outside ``[lower, upper]`` by more than :data:`lsegeo.design.BOUND_ROUNDING`
        of the range; the message names the basin, the parameter, the value and the bounds.
    """
    lower, upper = np.asarray(space.lower), np.asarray(space.upper)
    slack = BOUND_ROUNDING * (upper - lower)
    bad = ~np.isfinite(params) | (params < lower - slack) | (params > upper + slack)
    if bad.any():
        rows, cols = np.nonzero(bad)
        shown = "; ".join(f"basin {basins[r]}: {space.names[c]} = {float(params[r, c])!r} outside "
                          f"[{float(lower[c])!r}, {float(upper[c])!r}]"
                          for r, c in zip(rows[:5], cols[:5], strict=True))
        more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
        raise InputFormatError(f"{source} (variable params)", None, f"calibrated donor sets outside the "
                               f"parameter bounds of the store: {shown}{more}")


def described_space(space: ParameterSpace) -> ParameterSpace:
    """``space`` with each parameter's description from its registered model, where it has none.

    An ensemble store records bounds, scale and units but not descriptions; the products give them
    as each parameter's ``long_name``. A model that is not registered, or a parameter its space
    does not know, keeps the name alone.
    """
    from lsegeo.models.registry import get_model

    if all(p.description for p in space.parameters):
        return space
    try:
        known = {p.name: p.description for p in get_model(space.name).space.parameters}
    except Exception:  # not a registered model, or one that needs options: names only
        return space
    return ParameterSpace(tuple(p if p.description else replace(p, description=known.get(p.name, ""))
                                for p in space.parameters), name=space.name)


def fit_emulators(ts: Any, settings: Any, n: int | None = None) -> list[Any]:
    """Fit the large-sample emulators of a regionalization on a training set.

    Parameters
    ----------
    ts : TrainingSet
        Rows of the training basins only.
    settings : RegionalizeSettings
        Its ``emulator`` (kind must be ``lse``: a single-site emulator cannot predict for a
        basin it was not fitted on) and ``n_emulators``.
    n : int, optional
        Emulators to fit (default ``settings.n_emulators``); seeds ``seed, seed+1, ...``.

    Returns
    -------
    list of LargeSampleEmulator

    Raises
    ------
    ConfigError
        The emulator kind is not ``lse``.
    """
    from lsegeo.emulators import create_emulator

    es = settings.emulator
    if es.kind != "lse":
        raise ConfigError(f"regionalize.emulator.kind must be 'lse' (a large-sample emulator predicts for basins "
                          f"it has not seen); got {es.kind!r}")
    n = settings.n_emulators if n is None else n
    return [create_emulator(es.with_seed(es.seed + i)).fit(ts) for i in range(n)]


def emulator_skill(emulators: Sequence[Any], held_out: dict[str, Any] | None = None, *, ts: Any = None,
                   settings: Any = None, differentiable: Sequence[Any] = (), n_folds: int = 5) -> dict[str, Any]:
    """What a product records of the emulators behind it: their fits and their skill on unseen basins.

    Parameters
    ----------
    emulators : sequence of LargeSampleEmulator
        The fitted emulators (their ``skill``: backend, options, seed, training rows and basins,
        fit time).
    held_out : dict, optional
        The skill of the method's predicted score on held-out basins of the job's
        cross-validation, with real runs (:func:`lsegeo.regionalize.crossval.prediction_skill`),
        or the ``held_out`` entry of an earlier call (kept as it is).
    ts : TrainingSet, optional
        Without ``held_out``: the training rows, on which a grouped ``n_folds``-fold
        cross-validation of the emulator (every member of a basin in one fold:
        :func:`lsegeo.emulators.skill.cross_validate`) measures its skill on unseen basins.
    settings : RegionalizeSettings, optional
        Its ``emulator`` builds the cross-validated emulators (with ``ts``).
    differentiable : sequence, optional
        The ``torch_mlp`` emulators that ``lse-amortised`` trained through, when they are not
        ``emulators``.

    Returns
    -------
    dict
        ``emulators`` (their fits), ``held_out`` (``{"source": "crossvalidation runs", ...}``,
        ``{"source": "grouped emulator cross-validation", ...}`` or absent when neither is
        possible) and, for ``lse-amortised``, ``differentiable_emulators``.
    """
    out: dict[str, Any] = {"emulators": [dict(em.skill) for em in emulators]}
    if list(differentiable) and list(differentiable) != list(emulators):
        out["differentiable_emulators"] = [dict(em.skill) for em in differentiable]
    if held_out:  # a dict this function returned before keeps its source
        out["held_out"] = held_out if "source" in held_out else {
            "source": "crossvalidation runs: predicted score of each held-out basin's set against its real run",
            **held_out}
    elif ts is not None and settings is not None and len(set(np.asarray(ts.basin_index).tolist())) >= n_folds:
        from lsegeo.emulators import create_emulator
        from lsegeo.emulators.skill import cross_validate

        es = settings.emulator
        cv = cross_validate(lambda: create_emulator(es), ts, n_folds=n_folds, seed=es.seed, scheme="grouped")
        out["held_out"] = {"source": "grouped emulator cross-validation (every member of a basin in one fold)",
                           **cv}
    return out
