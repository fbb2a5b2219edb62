"""Training data of the emulators: basin attributes and unit-cube parameters -> scores.

:func:`training_set` reads an ensemble store (:mod:`lsegeo.ensembles.store`) and the ``attributes`` group
of a basins store and returns a :class:`TrainingSet`: one row per (basin, member) that ran
(status done) and has finite scores for every target, with the member's parameters mapped to
the unit cube through the store's parameter space, and one row of encoded attributes per basin.

Attribute encoding (:func:`encode_attributes`, :class:`AttributeEncoder`)
-------------------------------------------------------------------------
* **Numeric** attributes are used as they are (float64, no scaling: the tree backends do not
  need it and the MLP backend standardises its inputs itself).
* **Categorical** attributes (strings, e.g. ``dom_land_cover``) are one-hot encoded into one
  column ``<name>=<class>`` per class present among the basins the encoder is fitted on, in
  sorted order. A class not seen at fitting time encodes as all zeros (and sets the missing
  indicator when there is one).
* **Missing values** (NaN for numeric attributes, ``""`` for categorical ones): a numeric
  value is replaced by the median over the fitting basins, and a ``<name>_missing`` column
  (1 where the value was missing) is added, but only for attributes that have missing values
  among the fitting basins, so complete attributes add no constant column. A missing class
  is all zeros in the one-hot columns, with the same ``<name>_missing`` rule. An attribute
  missing in every fitting basin is filled with 0.
* The encoder (classes, fill values, which indicators exist) is a small JSON-serialisable
  object stored with every emulator, so basins or grid cells never seen in training are
  encoded exactly as the training basins were.

The encoder of a training set is fitted on the basins that have training rows (those the
emulator learns from); basins without observations still get an attribute row, encoded with it,
so that an emulator can predict them (regionalization).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lsegeo.design import Parameter, ParameterSpace
from lsegeo.errors import UnknownBasinError

__all__ = [
    "STUDY_ATTRIBUTES",
    "ATTRIBUTE_ALIASES",
    "AttributeEncoder",
    "TrainingSet",
    "encode_attributes",
    "space_from_store",
    "training_set",
]

#: The 27 CAMELS attributes of the large-sample emulator of Tang, Wood & Swenson (2025)
#: (flag ``att_Xie2021``), with CAMELS' names.
STUDY_ATTRIBUTES: tuple[str, ...] = (
    # topography
    "elev_mean", "slope_mean", "area_gages2",
    # climate
    "p_mean", "pet_mean", "aridity", "p_seasonality", "frac_snow", "high_prec_freq", "high_prec_dur",
    "low_prec_freq", "low_prec_dur",
    # vegetation
    "frac_forest", "lai_max", "lai_diff", "dom_land_cover", "dom_land_cover_frac",
    # soil
    "soil_depth_pelletier", "soil_depth_statsgo", "soil_porosity", "soil_conductivity", "max_water_content",
    "sand_frac", "silt_frac", "clay_frac",
    # geology
    "carbonate_rocks_frac", "geol_permeability",
)

#: CAMELS names that the basins store keeps as coordinates under another name.
ATTRIBUTE_ALIASES: dict[str, str] = {"area_gages2": "area", "gauge_lat": "lat", "gauge_lon": "lon"}

_MISSING = "_missing"


def _column(attrs: Any, name: str) -> np.ndarray | None:
    """The values of attribute ``name`` (or its alias) in a Dataset / DataFrame / mapping, or None."""
    for key in (name, ATTRIBUTE_ALIASES.get(name)):
        if key is None:
            continue
        try:
            col = attrs[key]
        except (KeyError, IndexError, TypeError):
            continue
        return np.asarray(getattr(col, "values", col))
    return None


def _is_categorical(values: np.ndarray) -> bool:
    return values.dtype.kind in ("U", "S", "O", "T")


def _as_text(values: np.ndarray) -> np.ndarray:
    return np.array(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
                     for v in values.tolist()], dtype=object)


@dataclass
class AttributeEncoder:
    """How attributes become feature columns; fitted once, reused for every new basin or cell.

    Parameters
    ----------
    names : list of str
        Attribute names, in the order of their columns.
    numeric : dict
        ``name -> {"fill": float, "indicator": bool}`` for numeric attributes: the value that
        replaces a missing one (median over the fitting basins) and whether a
        ``<name>_missing`` column exists.
    categorical : dict
        ``name -> {"classes": [str, ...], "indicator": bool}`` for categorical attributes.
    """

    names: list[str]
    numeric: dict[str, dict[str, Any]] = field(default_factory=dict)
    categorical: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        """Encoded column names, in order."""
        out: list[str] = []
        for name in self.names:
            if name in self.categorical:
                spec = self.categorical[name]
                out += [f"{name}={c}" for c in spec["classes"]]
            else:
                spec = self.numeric[name]
                out.append(name)
            if spec["indicator"]:
                out.append(name + _MISSING)
        return out

    @classmethod
    def fit(cls, attrs: Any, names: Sequence[str]) -> AttributeEncoder:
        """Learn classes, medians and indicator columns from ``attrs`` (one row per basin)."""
        names = list(names)
        cols = _columns(attrs, names)
        enc = cls(names=names)
        for name, values in cols.items():
            if _is_categorical(values):
                text = _as_text(values)
                missing = text == ""
                enc.categorical[name] = {"classes": sorted({str(t) for t in text[~missing]}),
                                         "indicator": bool(missing.any())}
            else:
                x = values.astype(np.float64)
                missing = np.isnan(x)
                fill = float(np.median(x[~missing])) if (~missing).any() else 0.0
                enc.numeric[name] = {"fill": fill, "indicator": bool(missing.any())}
        return enc

    def transform(self, attrs: Any) -> np.ndarray:
        """Encode ``attrs`` (one row per basin or cell) into ``(n, n_features)`` float64."""
        cols = _columns(attrs, self.names)
        blocks = []
        for name in self.names:
            values = cols[name]
            if name in self.categorical:
                spec = self.categorical[name]
                text = _as_text(values)
                classes = np.array(spec["classes"], dtype=object)
                onehot = (text[:, None] == classes[None, :]).astype(np.float64)
                blocks.append(onehot)
                missing = onehot.sum(axis=1) == 0  # absent or a class never seen in fitting
            else:
                if _is_categorical(values):
                    raise TypeError(f"attribute {name!r} was numeric when the encoder was fitted, "
                                    f"got values of dtype {values.dtype}")
                spec = self.numeric[name]
                x = values.astype(np.float64)
                missing = np.isnan(x)
                blocks.append(np.where(missing, spec["fill"], x)[:, None])
            if spec["indicator"]:
                blocks.append(missing.astype(np.float64)[:, None])
        n = len(next(iter(cols.values()))) if cols else 0
        return np.hstack(blocks) if blocks else np.zeros((n, 0))

    def unseen_classes(self, attrs: Any) -> dict[str, dict[str, int]]:
        """Classes of categorical attributes in ``attrs`` that the encoder was not fitted on.

        :meth:`transform` encodes them as missing (no class set; the missing indicator where the
        fit had one). Returns ``{attribute: {class: rows}}``, empty when every class is known.
        """
        cols = _columns(attrs, list(self.categorical))
        out: dict[str, dict[str, int]] = {}
        for name, spec in self.categorical.items():
            text = _as_text(cols[name])
            new = text[(text != "") & ~np.isin(text, np.array(spec["classes"], dtype=object))]
            if len(new):
                values, counts = np.unique(new.astype(str), return_counts=True)
                out[name] = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"names": list(self.names), "numeric": self.numeric, "categorical": self.categorical}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AttributeEncoder:
        """Inverse of :meth:`to_dict`."""
        return cls(names=list(d["names"]),
                   numeric={k: {"fill": float(v["fill"]), "indicator": bool(v["indicator"])}
                            for k, v in d.get("numeric", {}).items()},
                   categorical={k: {"classes": [str(c) for c in v["classes"]], "indicator": bool(v["indicator"])}
                                for k, v in d.get("categorical", {}).items()})

    def to_json(self) -> str:
        """The encoder as a JSON string.

        It is :meth:`to_dict` serialised with :func:`json.dumps`; :meth:`from_json` reads it back.
        """
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> AttributeEncoder:
        """Inverse of :meth:`to_json`.

        Parameters
        ----------
        text : str
            A JSON string written by :meth:`to_json`.
        """
        return cls.from_dict(json.loads(text))


def _columns(attrs: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    cols, unknown = {}, []
    for name in names:
        values = _column(attrs, name)
        if values is None:
            unknown.append(name)
        else:
            cols[name] = np.atleast_1d(values)
    if unknown:
        have = list(getattr(attrs, "data_vars", [])) + list(getattr(attrs, "coords", [])) \
            if isinstance(attrs, xr.Dataset) else list(getattr(attrs, "keys", list)())
        raise KeyError(f"unknown attribute(s) {unknown}; available: {', '.join(sorted(map(str, have)))}")
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise ValueError(f"attributes have different lengths: { {k: len(v) for k, v in cols.items()} }")
    return cols


def encode_attributes(attrs_ds: Any, names: Sequence[str] | None = None,
                      encoder: AttributeEncoder | None = None) -> tuple[np.ndarray, AttributeEncoder]:
    """Encode attributes into a feature matrix.

    Parameters
    ----------
    attrs_ds : xarray.Dataset or pandas.DataFrame or mapping
        One entry per basin (or grid cell) for every attribute; a Dataset's coordinates count
        (``area_gages2`` is looked up as the coordinate ``area``, see :data:`ATTRIBUTE_ALIASES`).
    names : sequence of str, optional
        Attributes to encode, in order: default :data:`STUDY_ATTRIBUTES`, or with ``encoder``
        the encoder's own names (giving other names is an error).
    encoder : AttributeEncoder, optional
        A fitted encoder (e.g. the one stored with an emulator); without it one is fitted on
        ``attrs_ds``.

    Returns
    -------
    matrix : numpy.ndarray
        ``(n, n_features)`` float64; column names are ``encoder.feature_names``.
    encoder : AttributeEncoder

    Raises
    ------
    KeyError
        An attribute name is not in ``attrs_ds``; the message names every unknown one.
    """
    if encoder is None:
        encoder = AttributeEncoder.fit(attrs_ds, STUDY_ATTRIBUTES if names is None else names)
    elif names is not None and list(names) != list(encoder.names):
        raise ValueError(f"names {list(names)} differ from the encoder's {encoder.names}")
    return encoder.transform(attrs_ds), encoder


def space_from_store(ds: xr.Dataset) -> ParameterSpace:
    """The parameter space recorded in an ensemble store.

    Parameters
    ----------
    ds : xarray.Dataset
        The ``ensemble`` group (``param_lower``, ``param_upper``, ``param_default``,
        ``param_scale`` and optionally ``param_units`` over ``param``).

    Returns
    -------
    ParameterSpace
    """
    need = ["param_lower", "param_upper", "param_default", "param_scale"]
    missing = [v for v in need if v not in ds]
    if missing:
        raise KeyError(f"the ensemble dataset has no {missing}; is it an lsegeo ensemble store?")
    names = [str(p) for p in ds["param"].values]
    lower, upper, default = (np.asarray(ds[v].values, dtype=np.float64) for v in need[:3])
    scale = [str(s) for s in ds["param_scale"].values]
    units = [str(u) for u in ds["param_units"].values] if "param_units" in ds else ["1"] * len(names)
    return ParameterSpace(tuple(Parameter(n, float(lo), float(hi), float(d), s, u)  # type: ignore[arg-type]
                                for n, lo, hi, d, s, u in zip(names, lower, upper, default, scale, units, strict=True)),
                          name=str(ds.attrs.get("lsegeo_model", "")))


@dataclass
class TrainingSet:
    """Rows (basin, member) of unit-cube parameters and scores, and one attribute row per basin.

    Attributes
    ----------
    basins : list of str
        Gauge ids; the emulator's basin index order (``basin_index`` points into it).
    attribute_names : list of str
        Encoded attribute feature names (``encoder.feature_names``).
    attributes : numpy.ndarray
        ``(n_basins, n_attr_features)`` float64 encoded attributes.
    param_names : list of str
    basin_index : numpy.ndarray
        ``(rows,)`` int64 index into ``basins``.
    params_unit : numpy.ndarray
        ``(rows, n_params)`` parameters mapped to [0, 1] by ``space``.
    target : numpy.ndarray
        ``(rows, n_targets)`` scores.
    target_names : list of str
        Objective names of the target columns.
    member : numpy.ndarray
        ``(rows,)`` member index of each row in the ensemble store.
    encoder : AttributeEncoder
        The fitted attribute encoding.
    space : ParameterSpace
        The parameter space of the unit-cube mapping.
    period : str
        Evaluation period of the scores.
    target_senses : list of str
        ``"max"`` or ``"min"`` for each target.
    """

    basins: list[str]
    attribute_names: list[str]
    attributes: np.ndarray
    param_names: list[str]
    basin_index: np.ndarray
    params_unit: np.ndarray
    target: np.ndarray
    target_names: list[str]
    member: np.ndarray
    encoder: AttributeEncoder
    space: ParameterSpace
    period: str = "calibration"
    target_senses: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.target)

    @property
    def basins_with_rows(self) -> np.ndarray:
        """Indices (into ``basins``) of the basins that have at least one row, sorted."""
        return np.unique(self.basin_index)

    def features(self, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """``[params_unit, attributes[basin_index]]`` of the rows, ``(n, n_params + n_attr)``."""
        rows = slice(None) if rows is None else rows
        return np.hstack([self.params_unit[rows], self.attributes[self.basin_index[rows]]])

    def subset(self, rows: np.ndarray) -> TrainingSet:
        """The same basins (and attribute rows) with only the given rows (index or boolean mask)."""
        rows = np.asarray(rows)
        return TrainingSet(basins=list(self.basins), attribute_names=list(self.attribute_names),
                           attributes=self.attributes, param_names=list(self.param_names),
                           basin_index=self.basin_index[rows], params_unit=self.params_unit[rows],
                           target=self.target[rows], target_names=list(self.target_names), member=self.member[rows],
                           encoder=self.encoder, space=self.space, period=self.period,
                           target_senses=list(self.target_senses))

    def select_basins(self, basins: Sequence[str]) -> TrainingSet:
        """A training set over the named basins only (their rows and attribute rows, in that order)."""
        pos = {b: i for i, b in enumerate(self.basins)}
        unknown = [b for b in basins if b not in pos]
        if unknown:
            raise UnknownBasinError(f"basins {unknown[:5]} are not in the training set")
        old = np.array([pos[b] for b in basins], dtype=np.int64)
        new_of_old = np.full(len(self.basins), -1, dtype=np.int64)
        new_of_old[old] = np.arange(len(old))
        keep = np.flatnonzero(new_of_old[self.basin_index] >= 0)
        out = self.subset(keep)
        out.basins = [str(b) for b in basins]
        out.attributes = self.attributes[old]
        out.basin_index = new_of_old[self.basin_index[keep]]
        return out


def _open(obj: str | Path | xr.Dataset, group: str) -> xr.Dataset:
    if isinstance(obj, xr.Dataset):
        return obj
    from lsegeo.io.stores import open_store

    return open_store(obj, group)


def training_set(
    ensemble_store: str | Path | xr.Dataset,
    basins_store: str | Path | xr.Dataset,
    objectives: Sequence[str] = ("nkgeprime",),
    period: str = "calibration",
    attributes: Sequence[str] = STUDY_ATTRIBUTES,
    basins: Sequence[str] | None = None,
    encoder: AttributeEncoder | None = None,
) -> TrainingSet:
    """Build the emulators' training data from an ensemble store and a basins store.

    Parameters
    ----------
    ensemble_store : path-like or xarray.Dataset
        An ensemble (or calibration) store, or its opened ``ensemble`` group.
    basins_store : path-like or xarray.Dataset
        The basins store, or its opened ``attributes`` group.
    objectives : sequence of str
        Target objectives (names in the store's ``objective`` coordinate), one column each.
    period : str
        Evaluation period of the scores.
    attributes : sequence of str
        Basin attributes to encode (default the 27 of the study).
    basins : sequence of str, optional
        Gauge ids, in the order of the training set's basin index. Default: the ensemble's
        basins. Basins absent from the ensemble (or without valid rows) get attributes but no
        rows.
    encoder : AttributeEncoder, optional
        Use this fitted encoding instead of fitting one on the basins with rows.

    Returns
    -------
    TrainingSet
        Rows for every (basin, member) with status done and finite scores for every target,
        ordered by basin then member.
    """
    from lsegeo.ensembles.store import DONE

    ens = _open(ensemble_store, "ensemble")
    attrs_ds = _open(basins_store, "attributes")
    objectives = [str(o) for o in objectives]
    have_obj = [str(o) for o in ens["objective"].values]
    unknown = [o for o in objectives if o not in have_obj]
    if unknown:
        raise KeyError(f"objective(s) {unknown} are not in the ensemble store; it has {', '.join(have_obj)}")
    have_per = [str(p) for p in ens["period"].values]
    if period not in have_per:
        raise KeyError(f"period {period!r} is not in the ensemble store; it has {', '.join(have_per)}")
    ens_basins = [str(b) for b in ens["basin"].values]
    basins = ens_basins if basins is None else [str(b) for b in basins]
    if len(set(basins)) != len(basins):
        raise ValueError("basins must not repeat")
    attr_basins = {str(b): i for i, b in enumerate(attrs_ds["basin"].values)}
    no_attr = [b for b in basins if b not in attr_basins]
    if no_attr:
        raise UnknownBasinError(f"basins {no_attr[:5]}{'...' if len(no_attr) > 5 else ''} have no attributes "
                                "in the basins store")
    space = space_from_store(ens)
    ens_pos = {b: i for i, b in enumerate(ens_basins)}
    in_ens = [b for b in basins if b in ens_pos]
    sel = np.array([ens_pos[b] for b in in_ens], dtype=np.int64)
    if len(sel):
        sub = ens.isel(basin=sel)
        scores = sub["scores"].sel(period=period, objective=objectives).transpose("basin", "member", "objective").values
        status = sub["status"].values
        params = sub["params"].transpose("basin", "member", "param").values
    else:
        nm, npar = ens.sizes["member"], ens.sizes["param"]
        scores, status, params = np.zeros((0, nm, len(objectives))), np.zeros((0, nm)), np.zeros((0, nm, npar))
    ok = (status == DONE) & np.isfinite(scores).all(axis=-1)
    b_local, member = np.nonzero(ok)  # row-major: ordered by basin, then member
    new_pos = {b: i for i, b in enumerate(basins)}
    to_new = np.array([new_pos[b] for b in in_ens], dtype=np.int64)
    basin_index = to_new[b_local] if len(b_local) else np.zeros(0, dtype=np.int64)
    order = np.argsort(basin_index, kind="stable")  # basin order of `basins`, members ascending
    b_local, member, basin_index = b_local[order], member[order], basin_index[order]
    params_unit = space.to_unit(params[b_local, member]) if len(b_local) else np.zeros((0, len(space)))
    target = scores[b_local, member].astype(np.float64)

    a_rows = attrs_ds.isel(basin=np.array([attr_basins[b] for b in basins], dtype=np.int64))
    if encoder is None:
        fit_rows = np.unique(basin_index) if len(basin_index) else np.arange(len(basins))
        encoder = AttributeEncoder.fit(a_rows.isel(basin=fit_rows), attributes)
    amat = encoder.transform(a_rows)
    senses = ([str(s) for s in ens["objective_sense"].sel(objective=objectives).values]
              if "objective_sense" in ens else [])
    return TrainingSet(basins=basins, attribute_names=encoder.feature_names, attributes=amat,
                       param_names=space.names, basin_index=basin_index.astype(np.int64), params_unit=params_unit,
                       target=target, target_names=objectives, member=member.astype(np.int64), encoder=encoder,
                       space=space, period=period, target_senses=senses)
