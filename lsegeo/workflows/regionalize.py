"""The regionalization workflow: ``lsegeo regionalize``.

They turn the ``regionalize`` and ``cluster`` sections of a validated
:class:`~lsegeo.config.Config` into calls of :mod:`lsegeo.regionalize` and :mod:`lsegeo.products`:

* :func:`regionalize_job`: the calibrated basins (:func:`~lsegeo.regionalize.training.load_training`)
  teach the emulators; the score interval is calibrated on a cross-validation of the chosen
  method (``interval_scheme``; checkpointed, so a rerun reuses it); every domain is
  regionalized and written as parameter maps (zarr master and netCDF, CF/ACDD, PROV-JSON, a
  catalog entry), with figures and, for a CTSM store, the CTSM files;
* :func:`~lsegeo.workflows.crossval.crossval_job` and :func:`~lsegeo.workflows.crossval.evaluate_job`
  (``lsegeo crossval``, ``lsegeo evaluate``) are in :mod:`lsegeo.workflows.crossval`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lsegeo.config import Config
from lsegeo.config.regionalize import DomainConfig
from lsegeo.errors import ConfigError, LsegeoError
from lsegeo.io.urls import exists, is_url, join, location, open_netcdf
from lsegeo.locations import catalog_path, work_dir
from lsegeo.regionalize.checkpoint import Checkpoint, checkpointed_emulators, digest_arrays, job_digest
from lsegeo.regionalize.settings import NLDAS_CONUS
from lsegeo.regionalize.training import camels_polygons

__all__ = ["RegionalizeReport", "regionalize_paths", "build_domain", "basin_regions", "regionalize_job",
           "format_regionalize_report"]

logger = logging.getLogger(__name__)

#: Reference of the method the products implement
REFERENCES = ("Tang, Wood and Swenson (2025), doi:10.1029/2024WR039525; Addor et al. (2017) CAMELS attributes, "
              "doi:10.5194/hess-21-5293-2017; Oudin et al. (2008), doi:10.1029/2007WR006240")


def regionalize_paths(cfg: Config) -> dict[str, Path]:
    """The stores and folders of the ``regionalize`` section, defaults filled in."""
    wd = Path(cfg.work_dir or work_dir())
    rc = cfg.regionalize
    return {"store": Path(rc.store or wd / "calibration_lse.zarr"),
            "basins_store": Path(rc.basins_store or wd / "camels_basins.zarr"),
            "output": location(rc.output or wd / "products"),
            "crossval": Path(rc.crossval_dir or wd / "crossval"),
            "work": wd}


def _as_run(rc: Any, paths: dict[str, Any]) -> dict[str, Any]:
    """The ``regionalize`` section as the job ran it: paths left to their defaults filled in."""
    return {**rc.model_dump(mode="json"), "store": paths["store"], "basins_store": paths["basins_store"],
            "output": paths["output"], "crossval_dir": paths["crossval"]}


@dataclass
class RegionalizeReport:
    """What :func:`regionalize_job` made.

    Attributes
    ----------
    products : dict
        Domain name -> written paths (``zarr``, ``netcdf``, sidecars, figures, CTSM files).
    figures : dict
        Domain name -> figure paths.
    targets : dict
        Domain name -> number of targets.
    seconds : dict
        Step -> wall seconds.
    crossval : dict
        The interval scheme's figures for the method (median KGE', share better than default).
    extrapolating : dict
        Domain name -> share of targets outside the training basins' attribute space.
    resumed : list of str
        Domains whose products an interrupted run of the same job had written (not made again).
    checkpoints : dict
        Kind of piece (``emulators``, ``lse-optimise``) -> ``{"computed": n, "resumed": m}``:
        how much work this run did and how much it loaded from the interrupted run's checkpoint.
    """

    products: dict[str, list[Path]] = field(default_factory=dict)
    figures: dict[str, list[Path]] = field(default_factory=dict)
    targets: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    crossval: dict[str, Any] = field(default_factory=dict)
    extrapolating: dict[str, float] = field(default_factory=dict)
    resumed: list[str] = field(default_factory=list)
    checkpoints: dict[str, dict[str, int]] = field(default_factory=dict)


def build_domain(dc: DomainConfig, basins_store: Path, training_basins: list[str], data_dir: Path | None = None):
    """The :class:`~lsegeo.regionalize.domains.Domain` of one ``regionalize.domains`` entry.

    ``basins: uncalibrated`` means every basin of the basins store without a calibrated set
    in the training store.
    """
    from lsegeo.regionalize import domains as dom
    from lsegeo.regionalize.rasterize import regular_grid, surfdata_grid

    if dc.kind == "basins":
        spec: Any = dc.basins
        if spec == "uncalibrated":
            from lsegeo.regionalize.training import basin_frame

            spec = [b for b in basin_frame(basins_store).index if b not in set(training_basins)]
        return dom.basins_domain(basins_store, spec, name=dc.name, gpkg=camels_polygons(data_dir))
    if dc.kind == "table":
        return dom.table_domain(dc.path, dc.id_column, name=dc.name)
    if dc.kind == "surfdata":
        lat, lon, land = surfdata_grid(dc.path)
    else:
        lat, lon = regular_grid(dc.bounds or NLDAS_CONUS, dc.resolution)
        land = surfdata_grid(dc.land_mask)[2] if dc.land_mask is not None else None
    grid_file = dc.path if dc.kind == "surfdata" else dc.land_mask
    if dc.attributes == "camels":
        domain = dom.camels_grid_domain(lat, lon, basins_store, gpkg=camels_polygons(data_dir),
                                        land_mask=land, name=dc.name)
    else:
        path = Path(dc.attributes)
        if not path.exists():
            raise ConfigError(f"regionalize.domains ({dc.name}).attributes: {path} does not exist; give 'camels' or "
                              "a netCDF/zarr dataset with one variable per attribute on (lat, lon)")
        try:
            opened = xr.open_zarr(path) if path.is_dir() else xr.open_dataset(path)
        except (ValueError, OSError, KeyError) as err:  # not a dataset xarray can read
            raise ConfigError(f"regionalize.domains ({dc.name}).attributes: {path} cannot be read as a netCDF file "
                              f"or zarr store ({type(err).__name__}: {str(err).splitlines()[0][:160]}); give 'camels' "
                              "or a netCDF/zarr dataset with one variable per attribute on (lat, lon)") from err
        with opened:  # closed once read
            attrs = opened.load()
        domain = dom.grid_domain(lat, lon, attrs, land_mask=land, name=dc.name)
        if path.is_file():  # the user's attribute dataset is an input (a zarr folder has no one digest)
            from lsegeo.provenance import sha256_file

            domain.inputs.setdefault(path.name, sha256_file(path))
    if grid_file is not None:  # the surface dataset whose grid and land mask the domain has is an input too
        from lsegeo.provenance import sha256_file

        domain.inputs[Path(grid_file).name] = sha256_file(grid_file)
    return domain


def _intervals(cfg: Config, paths: dict[str, Path], training, client, progress: bool):
    """The score intervals of the method and the cross-validation figures behind them."""
    from lsegeo.io.stores import root_attrs
    from lsegeo.models.protocol import is_external
    from lsegeo.models.registry import get_model
    from lsegeo.regionalize.crossval import fit_intervals, prediction_skill, spatial_crossvalidation

    rc = cfg.regionalize
    if rc.interval_scheme is None:
        return None, {}
    if is_external(get_model(str(root_attrs(paths["store"]).get("lsegeo_model", "")))):
        logger.info("the store's model runs outside lsegeo: no cross-validation runs, no score intervals")
        return None, {"note": "model runs outside lsegeo: no cross-validated intervals"}
    settings = rc.settings()
    cv = spatial_crossvalidation(paths["store"], paths["basins_store"], paths["crossval"],
                                 schemes=[rc.interval_scheme], methods=[rc.method], settings=settings,
                                 basins=training.basins, client=client, progress=progress, data_dir=cfg.data_dir)
    regions = basin_regions(paths["basins_store"]) if rc.interval_groups == "pur" else None
    iv = fit_intervals(cv.scores, rc.interval_scheme, rc.method, confidence=rc.confidence, groups=regions)
    rows = cv.table[(cv.table["method"] == rc.method)]
    skill = prediction_skill(cv.scores, rc.interval_scheme, rc.method)
    figures = {f"{r.period}": {"median": r.median, "median_95ci": [r.median_lo, r.median_hi],
                               "better_than_default": r.better_than_default, "gap_closure": r.gap_closure,
                               "n": r.n} for r in rows.itertuples()}
    return iv, {"scheme": rc.interval_scheme, "method": rc.method, "objective": rc.report_objective,
                "periods": figures, "predicted_score_skill": skill, "intervals": iv.to_dict()}


def basin_regions(basins_store: Path) -> dict[str, str]:
    """Gauge id -> PUR region of every basin of the basins store (Mondrian intervals).

    Raises
    ------
    ConfigError
        The basins store has no usable ``huc_02`` (naming ``regionalize.interval_groups``).
    """
    from lsegeo.io.stores import open_store
    from lsegeo.regionalize.folds import pur_regions

    try:
        return pur_regions(open_store(basins_store, "attributes"))
    except ValueError as exc:
        raise ConfigError(f"regionalize.interval_groups: pur needs the HUC-02 region of every basin of "
                          f"{basins_store} ({exc}); set it to null for pooled intervals") from exc


def _target_regions(domain, training, regions: dict[str, str]) -> np.ndarray:
    """The PUR region of each target: its own (a CAMELS gauge), else that of the nearest training basin."""
    from lsegeo.regionalize.donors import nearest_donors

    own = [regions.get(str(t)) for t in domain.targets]
    out = np.array(own, dtype=object)
    missing = np.array([r is None for r in own])
    if missing.any():
        idx, _ = nearest_donors(training.lat, training.lon, np.asarray(domain.lat)[missing],
                                np.asarray(domain.lon)[missing], k=1)
        out[missing] = [regions.get(training.basins[i], "HUC ?") for i in idx[:, 0]]
    return out


def _ctsm_version(store: Path, rc) -> str:
    """The CTSM version of a CTSM product: the one the store's runs used, else that of ``regionalize.ctsm``."""
    from lsegeo.io.stores import root_attrs

    return str(root_attrs(store).get("lsegeo_ctsm_version") or rc.ctsm.version)


def _store_inputs(paths: dict[str, Path], training) -> dict[str, str]:
    """The inputs every product of a job shares: the two stores and the calibrated sets learned from."""
    from lsegeo.io.marks import store_digest

    return {paths["store"].name: store_digest(paths["store"]),
            f"{paths['store'].name} (calibrated sets)": "sha256:" + training.calibration_sha256(),
            paths["basins_store"].name: store_digest(paths["basins_store"])}


def regionalize_job(cfg: Config, *, client=None, progress: bool = True, call: str = "") -> RegionalizeReport:
    """Regionalize every domain of ``cfg.regionalize`` and write the products.

    Parameters
    ----------
    cfg : Config
    client : distributed.Client, optional
        Run on it instead of starting the cluster of ``cfg.cluster``.
    progress : bool
    call : str
        The command line, for the products' ``history``.

    Returns
    -------
    RegionalizeReport

    Raises
    ------
    ConfigError
        No domains, a missing store, or a product path outside the output folder.
    """
    from lsegeo.emulators.features import STUDY_ATTRIBUTES
    from lsegeo.io.stores import root_attrs
    from lsegeo.parallel import dask_client
    from lsegeo.provenance import append_upstream_history, portable_config, product_attrs
    from lsegeo.regionalize.applicability import Applicability
    from lsegeo.regionalize.assemble import product_dataset
    from lsegeo.regionalize.crossval import to_report_scale
    from lsegeo.regionalize.methods import Context, regionalize
    from lsegeo.regionalize.training import emulator_skill, load_training

    rc = cfg.regionalize
    if not rc.domains:
        raise ConfigError("regionalize.domains is empty: list at least one target domain (docs/domains.md)")
    paths = regionalize_paths(cfg)
    for key in ("store", "basins_store"):
        if not paths[key].exists():
            raise ConfigError(f"regionalize.{key}: {paths[key]} does not exist")
    key = _job_key(cfg, paths)
    ckpt = Checkpoint(paths["work"] / CHECKPOINTS / key)
    finished = _finished_domains(paths, rc, key) if ckpt.started else set()
    if not rc.overwrite:  # refused before any work, not after it
        taken = [p for dc in rc.domains if dc.name not in finished for p in _product_files(paths, rc, dc.name)
                 if exists(p)]
        if taken:
            raise ConfigError(f"regionalize.output: {', '.join(map(str, taken))} already exist(s); pass --overwrite "
                              "(regionalize.overwrite: true) to replace products lsegeo wrote, or rename the domain")
    settings = rc.settings()
    report = RegionalizeReport()
    t0 = time.perf_counter()
    data_dir = Path(cfg.data_dir) if cfg.data_dir else None
    training = load_training(paths["store"], paths["basins_store"], objective=settings.objective,
                             period=settings.period, attributes=settings.attributes, gpkg=camels_polygons(data_dir))
    if is_url(paths["output"]) and training.space.name == "ctsm":
        raise ConfigError(f"regionalize.output: {paths['output']} is a URL, but the CTSM files of a CTSM product are "
                          "written into a local folder for CIME cases: give a path")
    content = job_digest({"job": key}, training)
    if finished and ckpt.digest not in (None, content):
        raise ConfigError(f"regionalize.store: {paths['store']} changed since the interrupted run of this job wrote "
                          f"{', '.join(sorted(finished))}; those products cannot be resumed: pass --overwrite "
                          "(regionalize.overwrite: true) to make them again")
    ckpt.start(content)
    if finished:
        logger.info("resuming: %s already written by this job", ", ".join(sorted(finished)))
    report.resumed = sorted(finished)
    report.seconds["training"] = time.perf_counter() - t0
    upstream = {paths[k].name: str(root_attrs(paths[k]).get("history", "")) for k in ("store", "basins_store")}
    shared_inputs = _store_inputs(paths, training)  # once per job, not per domain
    # every domain is built and checked before the long steps: a missing attribute fails fast
    names = list(settings.attributes or STUDY_ATTRIBUTES)
    domains = []
    for dc in rc.domains:
        domain = build_domain(dc, paths["basins_store"], training.basins, data_dir)
        domain.attribute_rows([n for n in names if n not in ("gauge_lat", "gauge_lon")])
        own = set(map(str, domain.targets)) & set(training.basins)
        if own:
            logger.warning("%s: %d of %d targets are calibrated basins of %s; their parameters draw on their own "
                           "calibration (a donor method takes it as its first donor), so they are not a test of "
                           "regionalization: use basins: unobserved or uncalibrated, or lsegeo crossval",
                           dc.name, len(own), len(domain), paths["store"].name)
        domains.append(domain)
    with dask_client(cfg.cluster, client) as cl:
        t0 = time.perf_counter()
        iv, cv_figures = _intervals(cfg, paths, training, cl, progress)
        report.seconds["crossvalidation"] = time.perf_counter() - t0
        report.crossval = cv_figures
        t1 = time.perf_counter()
        emulators = checkpointed_emulators(training, settings, ckpt)
        report.seconds["emulators"] = time.perf_counter() - t1
        logger.info("%d emulator(s) on %d training basins in %.1f s (they predict score_predicted and, for the "
                    "donor methods, define attribute similarity)", len(emulators), len(training),
                    report.seconds["emulators"])
        ctx = Context(training, settings, emulators, client=cl, checkpoint=ckpt)
        app = Applicability.fit(ctx.encode(training.attributes), quantile=settings.applicability_quantile)
        regions = basin_regions(paths["basins_store"]) if iv is not None and rc.interval_groups == "pur" else None
        held_out = cv_figures.get("predicted_score_skill")
        if held_out is not None and held_out.get("n", 0) < 3:  # too few basins: the emulator's own CV instead
            held_out = None
        for dc, domain in zip(rc.domains, domains, strict=True):
            if dc.name in finished:
                report.products[dc.name] = [p for p in _product_files(paths, rc, dc.name) if exists(p)]
                report.targets[dc.name] = len(domain)
                continue
            t2 = time.perf_counter()
            result = regionalize(ctx, domain)
            skill = emulator_skill(emulators, held_out, ts=training.ts, settings=settings,
                                   differentiable=ctx.cache.get("differentiable", ()))
            held_out = held_out or skill.get("held_out")  # a grouped cross-validation runs once per job
            rows = ctx.rows(domain)
            predicted = to_report_scale(result.predicted_score, settings.objective, settings.report_objective)
            if iv is not None:
                groups = _target_regions(domain, training, regions) if regions is not None else None
                lower, upper = iv.interval(predicted, difficulty=app.distance(rows) if iv.is_normalized else None,
                                           groups=groups)
            else:
                lower = upper = np.full(len(domain), np.nan)
            distance = app.distance(rows)
            flags = app.flag(rows)
            model = str(training.space.name or "")
            version = {"lsegeo_ctsm_version": _ctsm_version(paths["store"], rc)} if model == "ctsm" else {}
            ds = product_dataset(result, domain, predicted=predicted, lower=lower, upper=upper,
                                 applicability=distance, extrapolates=flags,
                                 attrs={"lsegeo_method": result.method, "lsegeo_objective": settings.report_objective,
                                        "lsegeo_period": settings.period, "lsegeo_domain_kind": domain.kind,
                                        "lsegeo_response": result.response,
                                        "lsegeo_interval_confidence": float(settings.confidence),
                                        "lsegeo_domain_name": domain.name, "lsegeo_model": model,
                                        "lsegeo_emulator_skill": skill,
                                        "lsegeo_crossvalidation": cv_figures,
                                        "lsegeo_applicability": {"k": app.k, "quantile": app.quantile,
                                                                 "threshold": app.threshold},
                                        "lsegeo_method_info": result.info, **version})
            inputs = {**shared_inputs, **(getattr(domain, "inputs", {}) or {})}
            config = portable_config(_as_run(rc, paths), base=paths["work"])
            attrs = product_attrs(
                title=f"{model.upper()} parameters regionalized by {result.method}: {domain.name}",
                summary=f"{len(domain)} targets ({domain.description}); parameters by {result.method} from "
                        f"{len(training)} calibrated basins of {paths['store'].name}; predicted "
                        f"{settings.report_objective}" + (f" with a {settings.confidence:.0%} split-conformal "
                                                          "interval." if iv is not None else
                                                          " (no interval: regionalize.interval_scheme is null or "
                                                          "the model runs outside lsegeo)."),
                step="regionalize", call=call or "lsegeo regionalize", config=config, inputs=inputs,
                references=REFERENCES)
            attrs = append_upstream_history(attrs, upstream)
            attrs[JOB_ATTR] = key
            maps = _write(ds, paths, dc, training.space, attrs, inputs, rc)
            report.products[dc.name] = maps
            report.targets[dc.name] = len(domain)
            report.extrapolating[dc.name] = float(np.mean(flags)) if len(flags) else 0.0
            if rc.figures:
                from lsegeo.plots.regionalize import plot_product_maps
                from lsegeo.products import annotate

                shown = annotate(ds, training.space, objective=settings.report_objective, period=settings.period,
                                 model=model)
                report.figures[dc.name] = plot_product_maps(shown, _figures_dir(paths), dc.name,
                                                            training.space.names)
            report.seconds[dc.name] = time.perf_counter() - t2
            logger.info("%s: %d targets regionalized by %s and written in %.1f s", dc.name, len(domain),
                        result.method, report.seconds[dc.name])
    report.checkpoints = ckpt.summary()
    ckpt.clear()  # every product is written: the finished pieces are not needed any more
    return report


#: folder of the work directory that holds the checkpoints of unfinished regionalization jobs
CHECKPOINTS = ".regionalize-checkpoints"
#: global attribute of a product: the key of the job that wrote it (:func:`_job_key`)
JOB_ATTR = "lsegeo_job_key"


def _job_key(cfg: Config, paths: dict[str, Path]) -> str:
    """The identity of a regionalization job: the settings that shape its results and its input stores."""
    from lsegeo.io.stores import store_id

    rc = cfg.regionalize.model_dump(mode="json", exclude={"overwrite", "figures"})
    ens = cfg.ensemble.model_dump(mode="json", include={"periods", "warmup_days", "objectives"})
    return digest_arrays(rc, ens, {k: str(paths[k]) for k in ("store", "basins_store", "output")},
                         store_id(paths["store"]), store_id(paths["basins_store"]))[:16]


def _product_files(paths: dict[str, Path], rc, name: str) -> list[Path]:
    """The parameter-map files of domain ``name`` (zarr and/or netCDF, as ``regionalize.formats`` says)."""
    return [join(paths["output"], f"{name}{ext}") for ext, fmt in ((".zarr", "zarr"), (".nc", "netcdf"))
            if fmt in rc.formats]


def _figures_dir(paths: dict[str, Any]) -> Path:
    """Where the maps go: ``<output>/figures``, or ``<work>/figures`` when the output is a URL."""
    return paths["work"] / "figures" if is_url(paths["output"]) else paths["output"] / "figures"


def _finished_domains(paths: dict[str, Path], rc, key: str) -> set[str]:
    """Domains whose every product exists and was written by the job of ``key`` (an interrupted run of it)."""
    from lsegeo.io.stores import root_attrs

    done = set()
    for dc in rc.domains:
        files = _product_files(paths, rc, dc.name)
        ok = bool(files)
        for f in files:
            try:
                if str(f).endswith(".zarr"):
                    got = root_attrs(f).get(JOB_ATTR)
                else:
                    with open_netcdf(f) as opened:
                        got = opened.attrs.get(JOB_ATTR)
            except (OSError, ValueError, LsegeoError):
                got = None
            ok = ok and got == key
        if ok:
            done.add(dc.name)
    return done


def _write(ds: xr.Dataset, paths: dict[str, Path], dc: DomainConfig, space, attrs, inputs, rc) -> list[Path]:
    """Parameter maps (and CTSM files for a CTSM product) of one domain."""
    from lsegeo.products import write_parameter_maps

    name = dc.name
    maps = write_parameter_maps(ds, paths["output"], name, space=space, attrs=attrs, inputs=inputs,
                                formats=rc.formats, overwrite=rc.overwrite,
                                catalog=catalog_path(paths["work"]))
    out = list(maps.paths)
    if ds.attrs.get("lsegeo_model") == "ctsm":
        from lsegeo.products import annotate

        annotated = annotate(ds, space, objective=str(ds.attrs["lsegeo_objective"]),
                             period=str(ds.attrs["lsegeo_period"]), model="ctsm")
        annotated.attrs.update(attrs)  # the product's id and source go into the CTSM files
        out += _write_ctsm(annotated, paths["output"], name, rc, dc.path if dc.kind == "surfdata" else None,
                           inputs=inputs, catalog=catalog_path(paths["work"]))
    return out


def _write_ctsm(ds: xr.Dataset, out: Path, name: str, rc, domain_surfdata: Path | None = None, *,
                inputs: dict[str, str] | None = None, catalog: Path | None = None) -> list[Path]:
    """CTSM files of one product: basin cases, or a surface dataset copy and a distributed-parameter stream.

    A grid's base surface dataset is ``regionalize.ctsm.surfdata``, or, when that is unset or a
    per-basin template (``{basin}``), the surface dataset of a ``kind: surfdata`` domain itself.
    Each file (the cases' manifest) gets a PROV-JSON sidecar whose inputs are the product's and
    the sha256 of the CTSM files it copies; the netCDF files carry the same provenance attributes
    and are entered in the catalog.
    """
    from lsegeo.products import write_ctsm_basin_cases, write_ctsm_surfdata, write_distparams_stream
    from lsegeo.products.ctsm import ctsm_file_provenance, record_ctsm_file

    c = rc.ctsm
    inputs = dict(inputs or {})
    hashes: dict[str, str] = {}  # each base file is hashed once, however many samples and files use it
    written: list[Path] = []
    if "basin" in ds.dims:
        if c.paramfile is None and c.surfdata is None:
            logger.info("%s: no regionalize.ctsm.paramfile/surfdata given: no CTSM case inputs written", name)
            return written
        cases = write_ctsm_basin_cases(ds, out / f"{name}_ctsm_cases", paramfile=c.paramfile, surfdata=c.surfdata,
                                       version=c.version, overwrite=rc.overwrite)
        base = _base_files({"paramfile": c.paramfile, "surfdata": c.surfdata}, list(cases.folders))
        attrs, ins = ctsm_file_provenance(ds.attrs, inputs, base, "ctsm_cases", hashes=hashes)
        record_ctsm_file(cases.manifest, ds.attrs, attrs, ins)
        return [cases.directory, cases.manifest]
    surfdata = c.surfdata if c.surfdata is not None and "{basin}" not in c.surfdata else domain_surfdata
    if c.distparams and c.paramfile is None:
        raise ConfigError("regionalize.ctsm.distparams needs regionalize.ctsm.paramfile (the defaults of cells "
                          "without a value and the variables' attributes)")
    for suffix, one in _sample_products(ds):
        if surfdata is not None:
            attrs, ins = ctsm_file_provenance(ds.attrs, inputs, {"surfdata": surfdata}, "ctsm_surfdata", hashes=hashes)
            path = write_ctsm_surfdata(one, surfdata, out / f"{name}_surfdata{suffix}.nc", version=c.version,
                                       overwrite=rc.overwrite, attrs=attrs)
            record_ctsm_file(path, ds.attrs, attrs, ins, catalog)
            written.append(path)
        if c.distparams:
            base = {"paramfile": c.paramfile, **({"surfdata": surfdata} if surfdata is not None else {})}
            attrs, ins = ctsm_file_provenance(ds.attrs, inputs, base, "ctsm_distparams", hashes=hashes)
            stream = write_distparams_stream(one, out / f"{name}_distparams{suffix}.nc", paramfile=c.paramfile,
                                             version=c.version, surfdata=surfdata, overwrite=rc.overwrite,
                                             attrs=attrs)
            record_ctsm_file(stream.path, ds.attrs, attrs, ins, catalog)
            written.append(stream.path)
    return written


def _base_files(files: dict[str, str | Path | None], basins: list[str]) -> dict[str, str]:
    """Role -> path of the CTSM files a product's files copy; a ``{basin}`` template gives one per basin."""
    out: dict[str, str] = {}
    for role, given in files.items():
        if not given:
            continue
        path = str(given)
        if "{basin}" in path:
            out.update({f"{role} {b}": path.replace("{basin}", b) for b in basins})
        else:
            out[role] = path
    return out


def _sample_products(ds: xr.Dataset) -> list[tuple[str, xr.Dataset]]:
    """A gridded product as the one-set-per-cell maps CTSM's files hold: itself, or one per sample.

    A mean-response product (``lsegeo_response = "mean"``) is run once per sample, so each sample
    gets its own files (suffix ``_sample<k>``), its parameter maps taken from ``<name>_samples``.
    """
    from lsegeo.products.metadata import product_response

    if product_response(ds) != "mean":
        return [("", ds)]
    names = [str(v).removesuffix("_samples") for v in ds.data_vars if str(v).endswith("_samples")]
    out = []
    for k in range(ds.sizes["sample"]):
        one = ds.copy()
        for n in names:
            one[n] = ds[f"{n}_samples"].isel(sample=k, drop=True).assign_attrs(ds[n].attrs)
        one.attrs["lsegeo_response"] = "point"
        out.append((f"_sample{k}", one))
    return out


def format_regionalize_report(report: RegionalizeReport) -> str:
    """Lines for the terminal: targets, products and times per domain."""
    lines = []
    if report.crossval.get("periods"):
        cv = report.crossval
        for period, f in cv["periods"].items():
            lines.append(f"cross-validation ({cv['scheme']} folds, {cv['method']}), {period}: median "
                         f"{cv['objective']} {f['median']:.3f} [{f['median_95ci'][0]:.3f}, {f['median_95ci'][1]:.3f}],"
                         f" better than default in {100 * f['better_than_default']:.0f}% of {f['n']} basins")
    for kind, n in report.checkpoints.items():
        if n["resumed"]:
            lines.append(f"resumed: {n['resumed']} of {n['resumed'] + n['computed']} {kind} piece(s) were finished by "
                         "an interrupted run of this job and loaded, not computed again")
    for name, files in report.products.items():
        if name in report.resumed:
            lines.append(f"{name}: written by an interrupted run of this job (resumed, not made again)")
            lines += [f"  {p}" for p in files]
            continue
        lines.append(f"{name}: {report.targets[name]} targets ({100 * report.extrapolating[name]:.0f}% outside the "
                     f"domain of applicability) in {report.seconds[name]:.1f} s")
        lines += [f"  {p}" for p in files if not str(p).endswith(".prov.json")]
        lines += [f"  {p}" for p in report.figures.get(name, [])]
    return "\n".join(lines)
