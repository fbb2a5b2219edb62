"""CTSM workflows: ingest an ensemble run elsewhere, propose the next iteration for HPC, collect it.

Wiring only (the library is :mod:`lsegeo.ingest.table` and :mod:`lsegeo.calibration.hpc`):

* :func:`ingest_table_job`: any parameter-set table + score table (+ parameter table) into an
  ensemble store, registered in the catalog (``lsegeo ingest table``);
* :func:`ingest_ctsm_camels`: the real CTSM ensemble shipped in ``<data dir>/ctsm_camels``
  (Tang, Wood & Swenson 2025): 201 trials x 27 parameters, KGE' of 496 of 627 CAMELS basins on
  WY2005-2009, the space from the CTSM parameter registry (``lsegeo ingest ctsm-camels``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from lsegeo import provenance
from lsegeo.errors import InputFormatError
from lsegeo.ingest.table import TableEnsemble, ingest_table_ensemble, space_from_table
from lsegeo.io import tables
from lsegeo.locations import catalog_path, resolve_data_dir, work_dir
from lsegeo.periods import Period

__all__ = ["CTSM_CAMELS_PERIOD", "CTSM_CAMELS_VERSION", "CITATION", "TableIngest", "ingest_table_job",
           "ingest_ctsm_camels"]

logger = logging.getLogger(__name__)

#: the scoring period of the study's ensemble: water years 2005-2009
CTSM_CAMELS_PERIOD = Period("calibration", dt.date(2004, 10, 1), dt.date(2009, 9, 30))
#: the CTSM version of the study's runs (CLM5.1 with hillslope hydrology): parameter layout 5.1
CTSM_CAMELS_VERSION = "5.1"
#: how to cite the shipped ensemble
CITATION = ("Tang, G., Wood, A. W., and Swenson, S. (2025), On using AI-based large-sample emulators for "
            "land/hydrology model calibration and regionalization, Water Resources Research 61, e2024WR039525. "
            "Data from github.com/NCAR/CTSM_calibration (branch develop_pre-v1.0, commit e559800), "
            "AGPL-3.0 with an attribution NOTICE (ctsm_camels/NOTICE).")


@dataclass(frozen=True)
class TableIngest:
    """What an ingest wrote: the store, its counts and the catalog entries."""

    store: Path
    basins: int
    scored_basins: int
    trials: int
    failed_trials: list[int]
    seconds: float
    catalog: Path | None
    entries: list[str]


def _register(store: Path, catalog: str | Path | None) -> tuple[Path | None, list[str]]:
    if catalog == "":
        return None, []
    from lsegeo.io.catalog import register_store

    cat = Path(catalog) if catalog else catalog_path(work_dir())
    return cat, register_store(store, cat)


def _finish(store: Path, t: TableEnsemble, t0: float, catalog) -> TableIngest:
    import time

    cat, entries = _register(store, catalog)
    return TableIngest(store, len(t.gauges), int(t.has_scores.sum()), len(t.trials), t.failed_trials,
                       time.perf_counter() - t0, cat, entries)


def ingest_table_job(*, parameter_sets: Path, scores: Path, parameter_table: Path, basins_store: Path, out: Path,
                     period: Period, objective: str = "kgeprime", gauges: Path | None = None, model: str = "external",
                     id_column: str = "trial", catalog: str | Path | None = None, overwrite: bool = False,
                     call: str = "") -> TableIngest:
    """Ingest any table ensemble (see :mod:`lsegeo.ingest.table`) and register the store.

    ``catalog``: ``None`` for ``<work dir>/catalog.yaml``, ``""`` to skip registering.
    """
    import time

    t0 = time.perf_counter()
    files = {"parameter_sets": parameter_sets, "scores": scores, "parameter_table": parameter_table,
             **({"gauges": gauges} if gauges else {})}
    sets = tables.read_parameter_sets(parameter_sets, id_column)
    space = space_from_table(tables.read_parameter_table(parameter_table), list(sets.columns), name=model)
    t = TableEnsemble(sets, tables.read_score_table(scores, id_column), space,
                      tables.read_gauges(gauges) if gauges else None,
                      files={"parameter_sets": str(parameter_sets), "scores": str(scores)})
    store = ingest_table_ensemble(out, t, basins_store=basins_store, period=period, objective=objective, model=model,
                                  sources={provenance.portable_path(p): provenance.sha256_file(p)
                                           for p in files.values()},
                                  overwrite=overwrite, call=call)
    return _finish(store, t, t0, catalog)


def ingest_ctsm_camels(*, data_dir: str | Path | None = None, basins_store: str | Path | None = None,
                       out: str | Path | None = None, scored_only: bool = False, catalog: str | Path | None = None,
                       overwrite: bool = False, call: str = "") -> TableIngest:
    """Ingest the real CTSM ensemble of ``<data dir>/ctsm_camels`` into an ensemble store.

    Parameters
    ----------
    data_dir : path-like, optional
        The data directory (default found as :func:`lsegeo.locations.resolve_data_dir` does).
    basins_store : path-like, optional
        The CAMELS basins store (default ``<work dir>/camels_basins.zarr``).
    out : path-like, optional
        Default ``<work dir>/ensemble_ctsm_camels.zarr``.
    scored_only : bool
        Keep only the 496 basins with scores (default: all 627, the 131 others without scores).
    catalog : path-like or "", optional
        The catalog (default ``<work dir>/catalog.yaml``; ``""``: not registered).
    overwrite : bool
        Replace an existing store.
    call : str
        The command, for ``history``.

    Returns
    -------
    TableIngest

    Raises
    ------
    lsegeo.errors.InputFormatError
        A table does not match the others or the CTSM parameter registry.
    lsegeo.errors.StoreError
        A gauge has no attributes in the basins store, or ``out`` exists.
    """
    import time

    from lsegeo.models.ctsm.parameters import load_registry

    t0 = time.perf_counter()
    src = resolve_data_dir(data_dir, expect="ctsm_camels") / "ctsm_camels"
    wd = work_dir()
    basins_store = Path(basins_store or wd / "camels_basins.zarr")
    out = Path(out or wd / "ensemble_ctsm_camels.zarr")
    files = {k: src / f for k, f in (("sets", "sa_parameter_sets.csv"), ("scores", "sa_kge.csv"),
                                     ("table", "sa_parameter_table.csv"), ("gauges", "basins_627.gpkg"),
                                     ("notice", "NOTICE"))}
    sets = tables.read_parameter_sets(files["sets"])
    table = tables.read_parameter_table(files["table"])
    reg = load_registry()
    unknown = [c for c in sets.columns if c not in reg]
    if unknown:
        raise InputFormatError(str(files["sets"]), 1, f"parameter column(s) {unknown} are not in the CTSM "
                                                             f"parameter registry {reg.source}")
    space = reg.space(list(sets.columns), CTSM_CAMELS_VERSION, bounds="sensitivity")
    off = [n for n in space.names if n in table.index
           and (abs(table.loc[n, "lower"] - space[n].lower) > 1e-9 * max(1.0, abs(space[n].lower))
                or abs(table.loc[n, "upper"] - space[n].upper) > 1e-9 * max(1.0, abs(space[n].upper)))]
    if off or set(table.index) != set(space.names):
        raise InputFormatError(str(files["table"]), None, f"the sampled ranges of {off} or the parameters "
                                                                 "differ from the CTSM registry's sa_lower/sa_upper")
    scores = tables.read_score_table(files["scores"])
    gauges = list(scores.columns) if scored_only else tables.read_gauges(files["gauges"])
    t = TableEnsemble(sets, scores, space, gauges, files={"parameter_sets": str(files["sets"]),
                                                          "scores": str(files["scores"])})
    store = ingest_table_ensemble(
        out, t, basins_store=basins_store, period=CTSM_CAMELS_PERIOD, objective="kgeprime", model="ctsm",
        sources={provenance.portable_path(p): provenance.sha256_file(p) for p in files.values()},
        attrs={"references": CITATION, "lsegeo_source": "ctsm_camels: CTSM (CLM5.1, hillslope hydrology) "
               "perturbed-parameter ensemble over CAMELS basins, KGE' of daily QRUNOFF against USGS streamflow, "
               "WY2005-2009", "lsegeo_ctsm_version": CTSM_CAMELS_VERSION,
               "lsegeo_notice": files["notice"].read_text(encoding="utf-8")[:4000]},
        overwrite=overwrite, call=call or "lsegeo ingest ctsm-camels")
    return _finish(store, t, t0, catalog)
