"""Readers of the tables of an ensemble run elsewhere: parameter sets, scores, parameter bounds, gauges.

An ensemble that was run outside lsegeo (e.g. the CTSM perturbed-parameter ensemble of Tang,
Wood & Swenson 2025, ``ctsm_camels/`` of the data folder) comes as plain tables:

* a **parameter-set table** (CSV): one row per trial, an id column (``trial``) and one column
  per parameter (the values, e.g. spatial means of CTSM fields);
* a **score table** (CSV): one row per trial, the same id column, one column per gauge (the
  score of the trial in that basin; empty or NaN where the run failed or was not scored);
* a **parameter table** (CSV): one row per parameter with its ``default``, ``lower`` and
  ``upper`` (optionally ``scale`` and ``units``); rows without bounds (parameters bound to
  another one) are dropped;
* a **gauge list**: a GeoPackage layer or a CSV with a ``gauge_id`` column.

Each reader takes a local path or a URL (``s3://...``, :mod:`lsegeo.io.urls`; pandas reads it
through fsspec, with the storage options configured for its protocol). Gauge ids are kept as
text (``"01022500"``: the leading zero matters). Every reader raises
:class:`~lsegeo.errors.InputFormatError` naming the file and what is wrong, and
:class:`~lsegeo.errors.DataNotFoundError` for a missing file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lsegeo.errors import DataNotFoundError, InputFormatError
from lsegeo.io.urls import is_file, location

__all__ = ["read_parameter_sets", "read_score_table", "read_parameter_table", "read_gauges"]


def _exists(path: str | Path, what: str) -> Path | str:
    """The location of an input table (a path or a URL), after checking that it is a file."""
    path = location(path)
    if not is_file(path):
        raise DataNotFoundError(f"{what} {path} does not exist")
    return path


def _trial_table(path: Path | str, id_column: str, what: str) -> pd.DataFrame:
    """A CSV with an integer id column as index and float columns (header kept as text)."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputFormatError(str(path), None, f"not a readable CSV {what}: {err}") from err
    df.columns = [str(c).strip() for c in df.columns]
    if id_column not in df.columns:
        raise InputFormatError(str(path), 1, f"no {id_column!r} column in the {what} (columns: "
                                             f"{', '.join(df.columns[:5])}...)")
    try:
        ids = df[id_column].astype("int64")
    except ValueError as err:
        raise InputFormatError(str(path), None, f"column {id_column!r} must hold integer ids: {err}") from err
    dup = sorted(set(ids[ids.duplicated()].tolist()))
    if dup:
        raise InputFormatError(str(path), None, f"{id_column} {dup[:5]} repeat(s)")
    values = df.drop(columns=id_column).replace({"": "nan", "NaN": "nan", "NA": "nan", "None": "nan"})
    try:
        values = values.astype("float64")
    except ValueError as err:
        raise InputFormatError(str(path), None, f"a value of the {what} is not a number: {err}") from err
    values.index = pd.Index(ids.to_numpy(), name=id_column)
    return values


def read_parameter_sets(path: str | Path, id_column: str = "trial") -> pd.DataFrame:
    """Read a parameter-set table.

    Parameters
    ----------
    path : path-like
        CSV: ``id_column`` then one column per parameter.
    id_column : str
        The trial id column.

    Returns
    -------
    pandas.DataFrame
        ``(trial, parameter)`` float64, indexed by the integer trial id, in file order.

    Raises
    ------
    DataNotFoundError
        The file is missing.
    InputFormatError
        No id column, repeated ids, a value that is not a finite number (a parameter set has
        every value).
    """
    path = _exists(path, "parameter-set table")
    df = _trial_table(path, id_column, "parameter-set table")
    bad = ~np.isfinite(df.to_numpy())
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputFormatError(str(path), int(r) + 2, f"{id_column} {df.index[r]}: parameter {df.columns[c]!r} "
                                                      "has no finite value")
    return df


def read_score_table(path: str | Path, id_column: str = "trial") -> pd.DataFrame:
    """Read a score table (one row per trial, one column per gauge).

    Returns
    -------
    pandas.DataFrame
        ``(trial, gauge)`` float64 scores (NaN where a run failed), indexed by trial id; the
        columns are the gauge ids as text.

    Raises
    ------
    DataNotFoundError
        The file is missing.
    InputFormatError
        No id column, repeated trial ids or gauges, a value that is not a number.
    """
    import fsspec

    path = _exists(path, "score table")
    with fsspec.open(str(path), "rt", encoding="utf-8-sig") as fh:
        header = [h.strip() for h in fh.readline().rstrip("\n").split(",")]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InputFormatError(str(path), 1, f"gauge column(s) {dup[:5]} repeat")
    return _trial_table(path, id_column, "score table")


def read_parameter_table(path: str | Path, name_column: str = "parameter") -> pd.DataFrame:
    """Read a parameter table: bounds and default of every parameter.

    Parameters
    ----------
    path : path-like
        CSV with ``name_column``, ``default``, ``lower``, ``upper`` (others, e.g. ``scale``,
        ``units``, ``source``, are kept).
    name_column : str
        The column of parameter names.

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter name; ``default``, ``lower``, ``upper`` float64. Rows whose bounds
        are empty (``None``: parameters moved together with another one) are dropped.

    Raises
    ------
    InputFormatError
        A missing column, a repeated name, a number that does not parse, ``lower >= upper`` or a
        default outside the bounds.
    """
    path = _exists(path, "parameter table")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in (name_column, "default", "lower", "upper") if c not in df.columns]
    if missing:
        raise InputFormatError(str(path), 1, f"missing column(s) {', '.join(missing)}")
    df[name_column] = df[name_column].str.strip()
    dup = sorted(set(df.loc[df[name_column].duplicated(), name_column]))
    if dup:
        raise InputFormatError(str(path), None, f"parameter(s) {dup} repeat")
    unbound = df[["lower", "upper"]].apply(lambda c: c.str.strip().isin(["", "None", "nan", "NaN"])).all(axis=1)
    df = df.loc[~unbound].set_index(name_column)
    for name, row in df.iterrows():
        try:
            vals = {k: float(row[k]) for k in ("default", "lower", "upper")}
        except ValueError as err:
            raise InputFormatError(str(path), None, f"parameter {name!r}: {err}") from err
        if not vals["lower"] < vals["upper"] or not vals["lower"] <= vals["default"] <= vals["upper"]:
            raise InputFormatError(str(path), None, f"parameter {name!r}: need lower < upper and the default "
                                                    f"inside, got {vals}")
    for k in ("default", "lower", "upper"):
        df[k] = df[k].astype("float64")
    return df


def read_gauges(path: str | Path, column: str = "gauge_id") -> list[str]:
    """Gauge ids of a GeoPackage (first layer) or CSV, as text, in file order.

    Raises
    ------
    InputFormatError
        No ``column``, or repeated ids.
    """
    path = _exists(path, "gauge list")
    if str(path).lower().endswith(".gpkg"):
        import fsspec
        import pyogrio

        local = path if isinstance(path, Path) else fsspec.open_local(f"simplecache::{path}")  # GDAL reads files
        df = pyogrio.read_dataframe(local, read_geometry=False)
    else:
        df = pd.read_csv(path, dtype=str)
    if column not in df.columns:
        raise InputFormatError(str(path), None, f"no {column!r} column (columns: {', '.join(map(str, df.columns))})")
    ids = [str(g).strip() for g in df[column]]
    dup = sorted({g for g in ids if ids.count(g) > 1})
    if dup:
        raise InputFormatError(str(path), None, f"gauge id(s) {dup[:5]} repeat")
    return ids
