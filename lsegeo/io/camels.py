"""Readers of the CAMELS-US text files (Newman et al. 2015; Addor et al. 2017).

Only reading and checking happens here: each reader returns pandas objects and raises
:class:`~lsegeo.errors.InputFormatError` naming the file and line when a file is malformed.
Building the basins store out of them is :mod:`lsegeo.ingest.camels`'s job.
"""

from __future__ import annotations

import bz2
import io
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from lsegeo.errors import InputFormatError, UnknownBasinError
from lsegeo.locations import require_file, resolve_data_dir

__all__ = [
    "FLOOD_CLUSTER_COLUMNS",
    "read_flood_cluster_table",
    "ATTRIBUTE_TABLES",
    "FORCING_LIMITS",
    "FORCING_VARIABLES",
    "MISSING_VALUE_CODES",
    "STREAMFLOW_MISSING_CODE",
    "CamelsLayout",
    "ForcingFile",
    "read_attributes",
    "read_forcing",
    "read_streamflow", "read_streamflow_table",
    "check_gauge_id",
]

ATTRIBUTE_TABLES = ("topo", "name", "clim", "hydro", "soil", "vege", "geol")
FORCING_HEADER = ("Year", "Mnth", "Day", "Hr", "dayl(s)", "prcp(mm/day)", "srad(W/m2)", "swe(mm)",
                  "tmax(C)", "tmin(C)", "vp(Pa)")
#: store variable name -> (column in the Daymet file, units, long name). ``swe`` is left out: it
#: is 0 in every row of every CAMELS forcing file (see the data README).
FORCING_VARIABLES = {
    "prcp": ("prcp(mm/day)", "mm day-1", "basin-mean daily precipitation (Daymet)"),
    "tmax": ("tmax(C)", "degC", "basin-mean daily maximum air temperature (Daymet)"),
    "tmin": ("tmin(C)", "degC", "basin-mean daily minimum air temperature (Daymet)"),
    "srad": ("srad(W/m2)", "W m-2", "basin-mean daylight-average incoming shortwave radiation (Daymet)"),
    "vp": ("vp(Pa)", "Pa", "basin-mean daily mean water vapour pressure (Daymet)"),
    "dayl": ("dayl(s)", "s", "day length (Daymet)"),
}
#: physical range of each forcing variable (inclusive), with the source of each bound: a value
#: outside it cannot be a basin-mean daily value, so :func:`read_forcing` refuses it (see
#: docs/ingest_checks.md). Precipitation has no upper bound here (the world 24-h record,
#: 1825 mm at Foc-Foc, La Reunion, 1966, is far above any CAMELS value).
FORCING_LIMITS = {
    "tmax": (-90.0, 60.0, "Earth's recorded extremes: -89.2 degC (Vostok, 1983) and 56.7 degC "
                          "(Death Valley, 1913), WMO Weather and Climate Extremes Archive"),
    "tmin": (-90.0, 60.0, "Earth's recorded extremes: -89.2 degC (Vostok, 1983) and 56.7 degC "
                          "(Death Valley, 1913), WMO Weather and Climate Extremes Archive"),
    "prcp": (0.0, np.inf, "precipitation is a depth, never negative"),
    "srad": (0.0, 1361.0, "a flux, never negative, and at most the solar constant 1361 W m-2 "
                          "(Kopp and Lean 2011)"),
    "vp": (0.0, 20000.0, "a pressure, never negative, and below the saturation vapour pressure at "
                         "60 degC, 19.9 kPa (Tetens / FAO-56 eq. 11)"),
    "dayl": (0.0, 86400.0, "a day length: 0 to 86400 s"),
}
#: numeric codes that data producers use for a missing value; in a forcing file each one is also
#: outside :data:`FORCING_LIMITS`, and the error then says it is a missing-value code
MISSING_VALUE_CODES = (-99.0, -99.9, -99.99, -999.0, -999.9, -999.99, -9999.0, -9999.9, -9999.99)
#: the one missing-value code of the CAMELS streamflow table (QC flag ``M``)
STREAMFLOW_MISSING_CODE = -999.0
_GAUGE_RE = re.compile(r"^\d{8}$")
_FORCING_SUFFIX = "_lump_cida_forcing_leap.txt.bz2"
STREAMFLOW_TABLE = "camels_us_streamflow_cfs_1980-2014.csv.bz2"


def check_gauge_id(gauge: str, where: str = "") -> str:
    """Return ``gauge`` if it is an 8-digit CAMELS gauge id, else raise :class:`UnknownBasinError`."""
    gauge = str(gauge)
    if not _GAUGE_RE.match(gauge):
        suffix = f" ({where})" if where else ""
        raise UnknownBasinError(
            f"unknown gauge id {gauge!r}{suffix}: CAMELS gauge ids are 8-digit strings such as '01013500'"
        )
    return gauge


@dataclass(frozen=True)
class CamelsLayout:
    """Where the CAMELS-US files are, below a data directory.

    Parameters
    ----------
    root : pathlib.Path
        The ``camels_us`` directory.
    """

    root: Path

    @classmethod
    def find(cls, data_dir: str | os.PathLike | None = None) -> CamelsLayout:
        """Locate ``camels_us`` in the data directory (see :mod:`lsegeo.locations`)."""
        base = resolve_data_dir(data_dir, expect="camels_us")
        return cls(base / "camels_us")

    @property
    def attributes_dir(self) -> Path:
        """The directory of the ``camels_<table>.txt`` attribute tables."""
        return self.root / "attributes"

    @property
    def forcing_dir(self) -> Path:
        """The directory of the Daymet basin-mean forcing files."""
        return self.root / "forcing" / "daymet"

    @property
    def streamflow_table(self) -> Path:
        """The bz2-compressed table of daily streamflow of every gauge [cfs]."""
        return self.root / "streamflow" / STREAMFLOW_TABLE

    def attribute_table(self, name: str) -> Path:
        """The attribute table ``camels_<name>.txt``; :class:`DataNotFoundError` when it is absent."""
        return require_file(self.attributes_dir / f"camels_{name}.txt",
                            f"the CAMELS attribute table camels_{name}.txt")

    def forcing_path(self, gauge: str) -> Path:
        """The Daymet forcing file of a gauge (which may not exist)."""
        return self.forcing_dir / f"{gauge}{_FORCING_SUFFIX}"

    @cached_property
    def forcing_gauges(self) -> list[str]:
        """Gauge ids of every Daymet forcing file present, sorted."""
        require_file(self.forcing_dir, "the Daymet forcing directory (forcing/daymet)")
        out = []
        for name in os.listdir(self.forcing_dir):
            if name.endswith(_FORCING_SUFFIX):
                out.append(check_gauge_id(name[: -len(_FORCING_SUFFIX)],
                                          f"file name {self.forcing_dir / name}"))
        return sorted(out)


def _read_table(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep=";", dtype={"gauge_id": str, "huc_02": str},
                        na_values=["NA", "NaN", ""], keep_default_na=True)
    if "gauge_id" not in table.columns:
        raise InputFormatError(str(path), 1, "expected a ';'-separated header with a 'gauge_id' column")
    for g in table["gauge_id"]:
        check_gauge_id(g, f"in {path}")
    if table["gauge_id"].duplicated().any():
        dup = table.loc[table["gauge_id"].duplicated(), "gauge_id"].iloc[0]
        line = int(np.flatnonzero(table["gauge_id"].to_numpy() == dup)[1]) + 2
        raise InputFormatError(str(path), line, f"gauge id {dup} appears more than once")
    table = table.set_index("gauge_id")
    table.attrs["line"] = {g: i + 2 for i, g in enumerate(table.index)}
    return table


#: attribute tables that may leave gauges out: ``camels_hydro`` has no row for the withheld gauges
PARTIAL_TABLES = ("hydro",)


def read_attributes(layout: CamelsLayout) -> pd.DataFrame:
    """Read and join every CAMELS attribute table.

    Returns
    -------
    pandas.DataFrame
        One row per gauge of ``camels_name.txt`` (671), indexed by the 8-character gauge id.
        Numeric attributes are float64 (NaN where missing; ``camels_hydro`` rows of withheld
        gauges are absent, so their signatures are NaN); categorical attributes are strings with
        surrounding blanks removed and ``""`` where missing. A ``table`` entry in ``.attrs`` maps
        each column to the table it came from, a ``line`` entry maps each table to ``{gauge:
        1-based line}``.

    Raises
    ------
    UnknownBasinError
        A table has a gauge that ``camels_name.txt`` lacks.
    InputFormatError
        A gauge of ``camels_name.txt`` has no row in another table (only ``camels_hydro.txt``
        may leave gauges out: the withheld ones); the message names the gauge and the file.
    """
    names = _read_table(layout.attribute_table("name"))
    frames, origin, lines = [], {}, {}
    for key in ATTRIBUTE_TABLES:
        table = names if key == "name" else _read_table(layout.attribute_table(key))
        unknown = table.index.difference(names.index)
        if len(unknown):
            raise UnknownBasinError(
                f"unknown gauge id {unknown[0]!r} in {layout.attribute_table(key)}: "
                f"not among the {len(names)} gauges of camels_name.txt"
            )
        absent = names.index.difference(table.index)
        if len(absent) and key not in PARTIAL_TABLES:
            raise InputFormatError(
                str(layout.attribute_table(key)), None,
                f"gauge {absent[0]} of camels_name.txt has no row here ({len(absent)} gauge(s) missing: "
                f"{', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}); every gauge needs one, "
                f"its attributes would otherwise be NaN")
        lines[key] = dict(table.attrs.get("line", {}))
        frames.append(table)
        origin.update({c: key for c in table.columns})
    attrs = pd.concat(frames, axis=1).reindex(names.index)
    for col in attrs.columns:
        if attrs[col].dtype == object or pd.api.types.is_string_dtype(attrs[col]):
            attrs[col] = attrs[col].astype(object).where(attrs[col].notna(), "").map(str).str.strip()
        else:
            attrs[col] = attrs[col].astype("float64")
    attrs = attrs.sort_index()
    attrs.attrs["table"] = origin
    attrs.attrs["line"] = lines
    return attrs


@dataclass
class ForcingFile:
    """One CAMELS Daymet forcing file, parsed.

    Attributes
    ----------
    gauge : str
        Gauge id.
    lat, elev, area_m2 : float
        The three header values: gauge latitude [deg], elevation [m] and basin area [m2].
    data : pandas.DataFrame
        Daily values indexed by date, columns as in :data:`FORCING_VARIABLES`.
    """

    gauge: str
    lat: float
    elev: float
    area_m2: float
    data: pd.DataFrame


def _open_text(path: Path) -> str:
    import gzip

    opener = bz2.open if str(path).endswith(".bz2") else gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt") as f:
            return f.read()
    except (OSError, EOFError) as err:
        kind = "bz2 text" if opener is bz2.open else "gzip text" if opener is gzip.open else "text"
        raise InputFormatError(str(path), None, f"cannot be read as {kind}: {err}") from err


def _first_bad_line(path: Path, lines: list[str], first_line: int) -> InputFormatError:
    """Scan body lines one by one and describe the first malformed one."""
    for i, text in enumerate(lines):
        if not text.strip():
            return InputFormatError(str(path), first_line + i, "empty line inside the data")
        cells = text.split()
        if len(cells) != len(FORCING_HEADER):
            return InputFormatError(
                str(path), first_line + i,
                f"expected {len(FORCING_HEADER)} whitespace-separated columns "
                f"({' '.join(FORCING_HEADER)}), found {len(cells)}")
        for name, cell in zip(FORCING_HEADER, cells, strict=True):
            try:
                value = float(cell)
            except ValueError:
                return InputFormatError(str(path), first_line + i,
                                        f"cell {cell!r} in column {name!r} is not a number")
            if not np.isfinite(value):
                return InputFormatError(str(path), first_line + i,
                                        f"cell {cell!r} in column {name!r} is not a finite number")
    return InputFormatError(str(path), None, "could not be parsed as a CAMELS forcing table")


def _check_physical(path: Path, data: pd.DataFrame, first_line: int) -> None:
    """Refuse the first value outside :data:`FORCING_LIMITS` (missing-value codes included)."""
    first: dict[str, int] = {}
    n_bad = 0
    for v, (lo, hi, _) in FORCING_LIMITS.items():
        values = data[v].to_numpy()
        bad = np.flatnonzero((values < lo) | (values > hi))
        if bad.size:
            first[v] = int(bad[0])
            n_bad += bad.size
    if not first:
        return
    v = min(first, key=first.get)
    i = first[v]
    value = float(data[v].iloc[i])
    lo, hi, source = FORCING_LIMITS[v]
    col, units, _ = FORCING_VARIABLES[v]
    code = (f"{value:g} is a numeric missing-value code, and Daymet forcing has no missing days; "
            if any(np.isclose(value, c) for c in MISSING_VALUE_CODES) else "")
    others = f"; {n_bad} value(s) of this file are outside their ranges" if n_bad > 1 else ""
    raise InputFormatError(
        str(path), first_line + i,
        f"{v} ({col!r}) = {value:g} {units} on {data.index[i].date()} is not physically possible: {code}"
        f"expected {lo:g} to {hi:g} {units} ({source}){others}")


def read_forcing(path: str | os.PathLike, gauge: str | None = None) -> ForcingFile:
    """Read and check one CAMELS Daymet forcing file (``*.txt`` or ``*.txt.bz2``).

    Parameters
    ----------
    path : path-like
        The file.
    gauge : str, optional
        Gauge id; by default taken from the first 8 characters of the file name.

    Returns
    -------
    ForcingFile

    Raises
    ------
    InputFormatError
        Naming the file and the 1-based line when a header value is not a number, the column
        header differs, a row has the wrong number of columns or a non-numeric cell, a date is
        invalid, repeated, out of order, or a day is missing; and naming the line, variable and
        value when a value is outside its physical range (:data:`FORCING_LIMITS`; numeric
        missing-value codes such as -999 are outside every range). ``tmin > tmax`` is not
        refused here: the ingest step counts and repairs it (see docs/ingest_checks.md).
    """
    path = Path(path)
    gauge = check_gauge_id(gauge or path.name[:8], f"file name {path}")
    text = _open_text(path)
    lines = text.splitlines()
    if len(lines) < 5:
        raise InputFormatError(str(path), len(lines) or None,
                               "expected 3 header values, a column header and daily rows")
    head = []
    for i, label in enumerate(("latitude", "elevation", "area in m2")):
        try:
            head.append(float(lines[i]))
        except ValueError:
            raise InputFormatError(str(path), i + 1,
                                   f"expected the {label} as a number, found {lines[i].strip()!r}") from None
    header = tuple(lines[3].split())
    if header != FORCING_HEADER:
        raise InputFormatError(str(path), 4, f"expected the column header {' '.join(FORCING_HEADER)!r}, "
                                             f"found {lines[3].strip()!r}")
    body = lines[4:]
    while body and not body[-1].strip():
        body.pop()
    try:
        frame = pd.read_csv(io.StringIO("\n".join(body)), sep=r"\s+", header=None,
                            names=list(FORCING_HEADER), engine="c", skip_blank_lines=False)
        ok = (all(pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns)
              and len(frame) == len(body) and np.isfinite(frame.to_numpy(dtype=float)).all())
    except (pd.errors.ParserError, ValueError):
        ok = False
    if not ok:
        raise _first_bad_line(path, body, first_line=5)
    dates = pd.to_datetime(
        dict(year=frame["Year"].astype(int), month=frame["Mnth"].astype(int), day=frame["Day"].astype(int)),
        errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise InputFormatError(str(path), 5 + i, "the year, month and day do not form a valid date")
    step = np.diff(dates.to_numpy()).astype("timedelta64[D]").astype(int)
    bad = np.flatnonzero(step != 1)
    if bad.size:
        i = int(bad[0]) + 1
        prev, cur = dates.iloc[i - 1].date(), dates.iloc[i].date()
        if step[i - 1] == 0:
            reason = f"duplicate date {cur} (the previous line has the same date)"
        elif step[i - 1] < 0:
            reason = f"date {cur} is earlier than the previous date {prev}: dates must increase"
        else:
            reason = f"date gap: {cur} follows {prev}, {step[i - 1] - 1} day(s) are missing"
        raise InputFormatError(str(path), 5 + i, reason)
    data = pd.DataFrame({v: frame[col].to_numpy(dtype="float64") for v, (col, _, _) in FORCING_VARIABLES.items()},
                        index=pd.DatetimeIndex(dates, name="time"))
    _check_physical(path, data, first_line=5)
    return ForcingFile(gauge=gauge, lat=head[0], elev=head[1], area_m2=head[2], data=data)


def read_streamflow(layout: CamelsLayout, *, with_codes: bool = False):
    """Read the CAMELS streamflow table of a data directory (:func:`read_streamflow_table`).

    Parameters
    ----------
    layout : CamelsLayout
        Where the table is.
    with_codes : bool
        As for :func:`read_streamflow_table`.
    """
    return read_streamflow_table(require_file(layout.streamflow_table, "the CAMELS streamflow table"),
                                 with_codes=with_codes)


def read_streamflow_table(path: str | os.PathLike, *, with_codes: bool = False):
    """Read a streamflow table in the CAMELS layout (cfs), masking ``-999`` and empty cells as NaN.

    The layout: a ``date`` column (``YYYY-MM-DD``) and one column per 8-digit gauge id, daily
    discharge in ft3 s-1; plain or bz2/gzip-compressed CSV.

    Parameters
    ----------
    path : path-like
        The table.
    with_codes : bool
        Also return where the table holds the missing-value code ``-999``.

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, pandas.DataFrame)
        Daily discharge in ft3 s-1, indexed by date, one column per gauge that has observations;
        gauges whose streamflow is withheld are simply absent. The two documented kinds of
        missing value (data README, section 4a) are NaN: ``-999.00`` (QC flag ``M``: the day is in
        the USGS record, the value is missing) and an empty cell (the date is not in the record).
        With ``with_codes``, also a boolean frame of the same shape, True where the cell was
        ``-999``; the empty cells are the other NaN.

    Raises
    ------
    InputFormatError
        Naming the file and the 1-based line when the header does not start with ``date``, a row
        has more or fewer cells than the header (a row cut short would otherwise leave its last
        gauges NaN without a word), a date is not ``YYYY-MM-DD``, a cell is not a number (``NA``
        or ``nan`` included: only an empty cell means "no date"), a value is negative other than
        the code ``-999``, or the dates do not increase.
    """
    path = require_file(Path(path), "the streamflow table")
    text = _open_text(path)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    header = lines[0].split(",") if lines else []
    if not header or header[0] != "date" or len(header) < 2:
        raise InputFormatError(str(path), 1, "expected a header 'date,<gauge id>,<gauge id>,...', found "
                                             f"{(lines[0] if lines else '')[:60]!r}")
    n = len(header)
    for i, line in enumerate(lines[1:]):
        k = line.count(",") + 1
        if k != n:
            raise InputFormatError(
                str(path), i + 2,
                f"found {k} comma-separated cell(s), expected {n} as in the header (date and {n - 1} gauges); "
                + ("the row is cut short" if k < n else "the row has extra cells"))
    table = pd.read_csv(io.StringIO("\n".join(lines)), index_col="date", keep_default_na=False, na_values=[""])
    dates = pd.to_datetime(table.index, format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna())[0])
        raise InputFormatError(str(path), i + 2, f"date {table.index[i]!r} is not a YYYY-MM-DD date")
    table.index = pd.DatetimeIndex(dates, name="time")
    for col in table.columns:
        check_gauge_id(col, f"column of {path}")
        if not pd.api.types.is_numeric_dtype(table[col]):
            bad = pd.to_numeric(table[col], errors="coerce").isna() & table[col].notna()
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputFormatError(str(path), i + 2, f"cell {table[col].iloc[i]!r} of gauge {col} is not a number "
                                                     "(a missing value is -999 or an empty cell)")
    if not table.index.is_monotonic_increasing or table.index.has_duplicates:
        raise InputFormatError(str(path), None, "dates must increase strictly from row to row")
    table = table.astype("float64")
    values = table.to_numpy()
    code = values == STREAMFLOW_MISSING_CODE
    bad = np.argwhere((values < 0) & ~code)
    if bad.size:
        i, j = (int(x) for x in bad[0])
        raise InputFormatError(
            str(path), i + 2,
            f"streamflow of gauge {table.columns[j]} on {table.index[i].date()} is {values[i, j]:g} cfs: a flow "
            f"cannot be negative, and the table's only missing-value code is {STREAMFLOW_MISSING_CODE:g} "
            f"({len(bad)} such cell(s) in the table)")
    masked = table.where(table >= 0)
    if with_codes:
        return masked, pd.DataFrame(code, index=table.index, columns=table.columns)
    return masked


#: the header of the flood-cluster table of Brunner et al. (2020)
FLOOD_CLUSTER_COLUMNS = ("Camels_IDs", "flood_cluster")


def read_flood_cluster_table(path: str | os.PathLike) -> pd.Series:
    """Read the flood-generation cluster of each CAMELS basin (Brunner et al. 2020).

    The file (``ctsm_camels/flood_clusters_brunner2020.txt`` of the data directory) is a header
    line ``Camels_IDs,flood_cluster``, then ``gauge_id,cluster`` per line; gauge ids may have
    lost their leading zeros.

    Parameters
    ----------
    path : path-like
        The table.

    Returns
    -------
    pandas.Series
        Cluster number (int64) indexed by 8-character gauge ids, named ``cluster``, index named
        ``basin``.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    InputFormatError
        Not UTF-8 text, another header, a line without two fields, a gauge id that is not up to
        8 digits, a cluster that is not an integer, a gauge listed twice, or no data line (names
        the file and the line).
    """
    path = require_file(Path(path), "the flood-cluster table of Brunner et al. (2020)")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise InputFormatError(str(path), None, f"not a UTF-8 text file ({e})") from None
    header = tuple(h.strip() for h in lines[0].split(",")) if lines else ()
    if header != FLOOD_CLUSTER_COLUMNS:
        raise InputFormatError(str(path), 1, f"expected the header {','.join(FLOOD_CLUSTER_COLUMNS)!r}, got "
                                             f"{lines[0] if lines else ''!r}")
    ids: list[str] = []
    clusters: list[int] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2:
            raise InputFormatError(str(path), n, f"expected 2 comma-separated fields (gauge id, cluster), "
                                                 f"got {len(fields)}: {line!r}")
        gauge, cluster = fields
        if not gauge.isdigit() or len(gauge) > 8:
            raise InputFormatError(str(path), n, f"gauge id must be up to 8 digits, got {gauge!r}")
        try:
            number = int(cluster)
        except ValueError:
            raise InputFormatError(str(path), n, f"cluster must be an integer, got {cluster!r}") from None
        gauge = gauge.zfill(8)
        if gauge in seen:
            raise InputFormatError(str(path), n, f"gauge {gauge} is listed twice (first on line {seen[gauge]})")
        seen[gauge] = n
        ids.append(gauge)
        clusters.append(number)
    if not ids:
        raise InputFormatError(str(path), None, "no data line after the header")
    return pd.Series(np.array(clusters, dtype=np.int64), index=pd.Index(ids, name="basin", dtype=object),
                     name="cluster")
