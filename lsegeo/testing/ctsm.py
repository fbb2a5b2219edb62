"""Small CTSM input files built to the real specification, for tests: a surface dataset, a parameter file.

* :func:`write_surfdata`: a surface dataset as ``mksurfdata_esmf`` writes it (dims ``lsmlat``,
  ``lsmlon``, ``natpft`` = 15, ``nlevsoi`` = 10, ``numurbl`` = 3; ``LONGXY``/``LATIXY`` in degrees
  east 0-360 / north, ``AREA``, ``LANDFRAC_PFT``, ``PFTDATA_MASK``, the ``PCT_*`` land units and
  PFTs, ``PCT_SAND``/``PCT_CLAY``/``ORGANIC`` per soil layer, ``FMAX``, ``zbedrock``, ``SLOPE``,
  ``STD_ELEV``, ``LAKEDEPTH``, ``SOIL_COLOR``, ``mxsoil_color``; the global attributes
  ``Conventions``, ``History_Log``, ``Source``, ``Version``, ``Dataset_Version``, ``Logname``,
  ``Host``, ``Number-of-tasks``). A grid of several cells has its first cell as ocean.
* :func:`write_paramfile`: a parameter file to the modern (ctsm5.4) specification: dims
  ``pft`` = 79, ``segment`` = 4, ``string_length`` = 40, ``pftname(pft)``, a 0-d ``double`` for
  every 0-d parameter of the registry in any layout (set to its registry default), the per-PFT
  ``medlynslope``, ``leafcn``, ``taulnir``, ``slatop`` and ``kmax(segment, pft)`` with a pattern
  across PFTs, and the paramfile's ``zbedrock``/``zbedrock_sf`` scalars. ``leafcn`` carries
  ``_FillValue = NaN`` and is NaN for ``not_vegetated`` (pft 0), as newer files do.

The real 2017 CLM5 parameter file (``ctsm/clm5_params.c171117.nc`` of the data folder) lacks the
0-d hydrology scalars, hence this file for the 0-d parameters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from lsegeo.io.ctsm_files import write_netcdf
from lsegeo.models.ctsm.parameters import load_registry

__all__ = ["NATPFT", "NLEVSOI", "NPFT", "write_surfdata", "write_paramfile"]

NATPFT = 15
NLEVSOI = 10
NPFT = 79
NSEGMENT = 4


def write_surfdata(path: str | Path, *, nlat: int = 2, nlon: int = 3, seed: int = 0,
                   fmt: str = "NETCDF3_64BIT_OFFSET", lon0: float = 255.0, lat0: float = 40.0,
                   res: float = 0.125, drop: tuple[str, ...] = ()) -> Path:
    """Write a small surface dataset.

    Parameters
    ----------
    path : path-like
    nlat, nlon : int
        Grid size; with more than one cell, cell ``(0, 0)`` is ocean (``LANDFRAC_PFT = 0``).
    seed : int
        Seed of the field values (FMAX in [0.1, 0.7], zbedrock in [0.5, 20] m, textures, ...).
    fmt : str
        netCDF format of the file.
    lon0, lat0, res : float
        Centre of the first cell (degrees east 0-360, north) and the grid spacing (degrees).
    drop : tuple of str
        Variables left out (to test the errors for a file without them).

    Returns
    -------
    Path
    """
    rng = np.random.default_rng(seed)
    shape = (nlat, nlon)
    lon = lon0 + res * np.arange(nlon)
    lat = lat0 + res * np.arange(nlat)
    land = np.ones(shape)
    if nlat * nlon > 1:
        land[0, 0] = 0.0
    is_land = land > 0
    yx = ("lsmlat", "lsmlon")

    def field(lo, hi, n=None):
        size = shape if n is None else (n, *shape)
        return np.where(is_land, rng.uniform(lo, hi, size), 0.0)

    natveg = np.where(is_land, 90.0, 0.0)
    pct_pft = rng.dirichlet(np.ones(NATPFT), size=shape).transpose(2, 0, 1) * 100.0
    cell_area = 111.2 ** 2 * res ** 2 * np.cos(np.deg2rad(lat))[:, None] * np.ones(shape)
    v = {
        "natpft": (("natpft",), np.arange(NATPFT, dtype=np.int32), {"long_name": "indices of natural PFTs",
                                                                    "units": "index"}),
        "LONGXY": (yx, np.broadcast_to(lon, shape).copy(), {"long_name": "longitude", "units": "degrees east"}),
        "LATIXY": (yx, np.broadcast_to(lat[:, None], shape).copy(), {"long_name": "latitude",
                                                                     "units": "degrees north"}),
        "AREA": (yx, cell_area, {"long_name": "area", "units": "km^2"}),
        "LANDFRAC_PFT": (yx, land, {"long_name": "land fraction from pft dataset", "units": "unitless"}),
        "PFTDATA_MASK": (yx, is_land.astype(np.int32), {"long_name": "land mask from pft dataset, indicative "
                                                        "of real/fake points", "units": "unitless"}),
        "PCT_NATVEG": (yx, natveg, {"long_name": "total percent natural vegetation landunit", "units": "unitless"}),
        "PCT_CROP": (yx, np.where(is_land, 5.0, 0.0), {"long_name": "total percent crop landunit",
                                                       "units": "unitless"}),
        "PCT_LAKE": (yx, np.where(is_land, 2.0, 0.0), {"long_name": "percent lake", "units": "unitless"}),
        "PCT_WETLAND": (yx, np.where(is_land, 3.0, 0.0), {"long_name": "percent wetland", "units": "unitless"}),
        "PCT_GLACIER": (yx, np.zeros(shape), {"long_name": "percent glacier", "units": "unitless"}),
        "PCT_OCEAN": (yx, np.where(is_land, 0.0, 100.0), {"long_name": "percent ocean", "units": "unitless"}),
        "PCT_URBAN": (("numurbl", *yx), np.zeros((3, *shape)), {"long_name": "percent urban for each density type",
                                                                "units": "unitless"}),
        "PCT_NAT_PFT": (("natpft", *yx), pct_pft, {"long_name": "percent plant functional type on the natural "
                                                   "veg landunit (% of landunit)", "units": "unitless"}),
        "PCT_SAND": (("nlevsoi", *yx), field(10, 80, NLEVSOI), {"long_name": "percent sand", "units": "unitless"}),
        "PCT_CLAY": (("nlevsoi", *yx), field(5, 40, NLEVSOI), {"long_name": "percent clay", "units": "unitless"}),
        "ORGANIC": (("nlevsoi", *yx), field(0, 60, NLEVSOI),
                    {"long_name": "organic matter density at soil levels",
                     "units": "kg/m3 (assumed carbon content 0.58 gC per gOM)"}),
        "FMAX": (yx, field(0.1, 0.7), {"long_name": "maximum fractional saturated area", "units": "unitless"}),
        "zbedrock": (yx, field(0.5, 20.0), {"long_name": "soil depth", "units": "m"}),
        "SLOPE": (yx, field(0.1, 15.0), {"long_name": "mean topographic slope", "units": "degrees"}),
        "STD_ELEV": (yx, field(5.0, 400.0), {"long_name": "standard deviation of elevation", "units": "m"}),
        "LAKEDEPTH": (yx, np.where(is_land, 10.0, 0.0), {"long_name": "lake depth", "units": "m"}),
        "SOIL_COLOR": (yx, np.where(is_land, 15, 0).astype(np.int32), {"long_name": "soil color",
                                                                       "units": "unitless"}),
        "mxsoil_color": ((), np.int32(20), {"long_name": "maximum numbers of soil colors", "units": "unitless"}),
    }
    ds = xr.Dataset({k: xr.Variable(*t) for k, t in v.items() if k not in drop})
    ds.attrs = {"Conventions": "NCAR-CESM", "History_Log": "created on: 11-29-26 12:00:00",
                "Source": "Community Land Model: CLM5", "Version": "ctsm5.4.025",
                "Dataset_Version": "5.4", "Logname": "lsegeo-tests", "Host": "localhost",
                "Number-of-tasks": np.int32(1)}
    return write_netcdf(ds, path, fmt)


def write_paramfile(path: str | Path, *, fmt: str = "NETCDF3_CLASSIC", seed: int = 0) -> Path:
    """Write a small parameter file to the modern specification (see the module docstring).

    Parameters
    ----------
    path : path-like
    fmt : str
        netCDF format; CTSM's own files are ``NETCDF3_CLASSIC``.
    seed : int
        Seed of the per-PFT patterns.

    Returns
    -------
    Path
    """
    rng = np.random.default_rng(seed)
    reg = load_registry()
    v: dict[str, xr.Variable] = {}
    names = ["not_vegetated"] + [f"pft_{i:02d}" for i in range(1, NPFT)]
    v["pftname"] = xr.Variable(("pft",), np.array(names, dtype="S40"),
                               {"long_name": "Description of plant type", "units": "unitless"})
    for p in reg.parameters:
        for _, loc in p.where:
            if loc.kind == "param" and not loc.dims and loc.variable not in v:
                v[loc.variable] = xr.Variable((), np.float64(p.default), {"long_name": p.long_name,
                                                                           "units": p.units})
    pattern = rng.uniform(0.5, 1.5, NPFT)
    for name, base in (("medlynslope", 4.8), ("taulnir", 0.39), ("slatop", 0.02)):
        values = base * pattern * (np.arange(NPFT) > 0 if name != "medlynslope" else 1.0)
        p_units = reg[name].units if name in reg else "m^2/gC"
        v[name] = xr.Variable(("pft",), values, {"long_name": name, "units": p_units, "coordinates": "pftname"})
    leafcn = 22.0 * rng.uniform(0.7, 1.3, NPFT)
    leafcn[0] = np.nan
    v["leafcn"] = xr.Variable(("pft",), leafcn, {"long_name": "Leaf C:N", "units": "gC/gN",
                                                 "coordinates": "pftname"})
    kmax = 2e-8 * np.outer(np.linspace(1.0, 0.5, NSEGMENT), pattern)
    kmax[:, 0] = 0.0
    v["kmax"] = xr.Variable(("segment", "pft"), kmax, {"long_name": "plant segment max conductance",
                                                       "units": "mm h2o/mm h2o/sec", "coordinates": "segment pftname"})
    v["zbedrock_sf"] = xr.Variable((), np.float64(1.0), {"long_name": "scale factor on zbedrock", "units": "unitless"})
    v["zbedrock"] = xr.Variable((), np.float64(-1.0), {"long_name": "bedrock depth (negative: use surfdata)",
                                                       "units": "m"})
    ds = xr.Dataset(v)
    ds.attrs = {"Conventions": "CF-1.0", "title": "CTSM parameter file (lsegeo test, modern layout)",
                "history": "created by lsegeo.testing.ctsm.write_paramfile"}
    return write_netcdf(ds, path, fmt, fill=("leafcn",), char_dims={"pftname": "string_length"})
