"""Settings of the ingest step: the one place that holds their defaults.

:class:`IngestSettings` owns the defaults of :func:`lsegeo.ingest.camels.ingest_camels`; the
``ingest`` section of the configuration (:class:`lsegeo.config.IngestConfig`) takes its defaults
from it. The period is the whole record of the CAMELS-US Daymet forcing and USGS streamflow
(Newman et al. 2015): water years 1980-2014.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["IngestSettings"]


@dataclass(frozen=True)
class IngestSettings:
    """Settings of one ingest of CAMELS-US into a basins store.

    Attributes
    ----------
    start, end : datetime.date
        First and last day stored (inclusive); days outside a file's records are NaN.
    chunk_basins : int
        Basins per zarr chunk and per dask task (whole time series in each chunk).
    area_tolerance : float
        Relative difference [1] above which a basin's forcing-file area or
        ``area_geospa_fabric`` is reported as disagreeing with ``area_gages2``, the area that
        converts streamflow (docs/ingest_checks.md). 5%: the data README calls differences of
        "a few percent" usual.
    """

    start: dt.date = dt.date(1980, 1, 1)
    end: dt.date = dt.date(2014, 12, 31)
    chunk_basins: int = 64
    area_tolerance: float = 0.05
