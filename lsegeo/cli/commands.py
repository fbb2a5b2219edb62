"""The commands of the calibration half: ingest, ensembles, calibration, sensitivity, comparison, catalog, demo."""

from __future__ import annotations

from pathlib import Path

import click

from lsegeo.cli.base import DATE, main
from lsegeo.cli.base import call_line as _call
from lsegeo.cli.base import date_range as _date_range
from lsegeo.io.urls import basename

__all__: list[str] = []


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Directory holding camels_us/.")
def info(data_dir: Path | None) -> None:
    """Show where input data is looked for and which library versions are in use."""
    from lsegeo.locations import data_dir_candidates, work_dir
    from lsegeo.provenance import software_versions

    click.echo("data directory candidates (first existing one wins):")
    for path, how in data_dir_candidates(data_dir):
        click.echo(f"  {'found  ' if path.is_dir() else 'missing'} {path}  [{how}]")
    click.echo(f"work directory: {work_dir()}")
    click.echo("versions: " + ", ".join(f"{k} {v}" for k, v in software_versions().items()))


@main.group()
def ingest() -> None:
    """Read source data into a basins store (zarr v3)."""


@ingest.command("camels")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML configuration (keys data_dir, work_dir, cluster, ingest); options below override it.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Directory holding camels_us/.")
@click.option("--out", "store", type=click.Path(path_type=Path),
              help="Output store [default: <work dir>/camels_basins.zarr].")
@click.option("--basin", "-b", "basins", multiple=True,
              help="Gauge id to ingest (repeatable) [default: all with forcing].")
@click.option("--basins-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Text file with one gauge id per line.")
@click.option("--start", type=DATE, help="First day, YYYY-MM-DD [default: 1980-01-01].")
@click.option("--end", type=DATE, help="Last day, YYYY-MM-DD (not before --start) [default: 2014-12-31].")
@click.option("--chunk-basins", type=click.IntRange(1, 4096), help="Basins per zarr chunk and per task [default: 64].")
@click.option("--workers", type=click.IntRange(1), help="Local worker processes [default: number of cores, at most 4].")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@click.option("--catalog", metavar="PATH",
              help="intake catalog to register the store in ('' to skip) [default: <work dir>/catalog.yaml].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ingest_camels_cmd(config_path, data_dir, store, basins, basins_file, start, end, chunk_basins, workers,
                      overwrite, catalog, quiet) -> None:
    """Ingest CAMELS-US (attributes, Daymet forcing + PET, observed streamflow) into a basins store.

    The per-file work runs in parallel on a dask cluster (a local cluster by default); the store
    appears at its path only when complete. Malformed files stop the run with an error that
    names the file and line.
    """
    from lsegeo.config import apply_overrides, load_config
    from lsegeo.io.summary import format_summary
    from lsegeo.workflows.ingest import ingest_job

    _date_range(start, end)
    ids = list(basins)
    if basins_file:
        listed = [line.strip() for line in basins_file.read_text().splitlines() if line.strip()]
        if not listed:  # not "every basin": a list that selects none is a mistake
            raise click.BadParameter(f"{basins_file} lists no gauge id (expected one per line)",
                                     param_hint="'--basins-file'")
        ids += listed
    cfg = apply_overrides(load_config(config_path), {
        "data_dir": data_dir, "ingest.store": store, "ingest.basins": ids or None, "ingest.start": start,
        "ingest.end": end, "ingest.chunk_basins": chunk_basins, "ingest.overwrite": overwrite or None,
        "cluster.n_workers": workers})
    result = ingest_job(cfg, catalog=catalog, progress=not quiet, call=_call())  # catalog '': not registered
    click.echo(format_summary(result.summary))
    if result.catalog:
        click.echo(f"catalog {result.catalog}: {', '.join(result.entries)}")


def _echo_table_ingest(r) -> None:
    click.echo(f"{r.store}: {r.basins} basins ({r.scored_basins} with scores) x {r.trials} trials, "
               f"{len(r.failed_trials)} failed everywhere, in {r.seconds:.1f} s")
    if r.catalog:
        click.echo(f"catalog {r.catalog}: {', '.join(r.entries)}")


_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@ingest.command("table")
@click.option("--parameter-sets", required=True, type=_EXISTING_FILE, help="CSV: trial id, one column per parameter.")
@click.option("--scores", required=True, type=_EXISTING_FILE, help="CSV: trial id, one column per gauge.")
@click.option("--parameter-table", required=True, type=_EXISTING_FILE,
              help="CSV: parameter, default, lower, upper (scale, units optional).")
@click.option("--basins-store", required=True, type=click.Path(exists=True, path_type=Path),
              help="Basins store with the gauges' attributes.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Ensemble store to write.")
@click.option("--start", required=True, type=DATE, help="First day of the scores' period.")
@click.option("--end", required=True, type=DATE, help="Last day of the scores' period.")
@click.option("--objective", default="kgeprime", show_default=True, help="Registered objective the scores are.")
@click.option("--gauges", type=_EXISTING_FILE, help="GeoPackage/CSV (gauge_id) of every basin, scored or not.")
@click.option("--model", default="external", show_default=True, help="Model name recorded with the store.")
@click.option("--catalog", metavar="PATH", help="Catalog ('' to skip) [default: <work dir>/catalog.yaml].")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
def ingest_table_cmd(parameter_sets, scores, parameter_table, basins_store, out, start, end, objective, gauges,
                     model, catalog, overwrite) -> None:
    """An ensemble run elsewhere (parameter-set table + score table) -> ensemble store."""
    from lsegeo.periods import Period
    from lsegeo.workflows.ctsm import ingest_table_job

    _date_range(start, end)
    _echo_table_ingest(ingest_table_job(
        parameter_sets=parameter_sets, scores=scores, parameter_table=parameter_table, basins_store=basins_store,
        out=out, period=Period("calibration", start, end), objective=objective, gauges=gauges, model=model,
        catalog=catalog, overwrite=overwrite, call=_call()))


@ingest.command("ctsm-camels")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Directory holding ctsm_camels/.")
@click.option("--basins-store", type=click.Path(exists=True, path_type=Path),
              help="CAMELS basins store [default: <work dir>/camels_basins.zarr].")
@click.option("--out", type=click.Path(path_type=Path), help="[default: <work dir>/ensemble_ctsm_camels.zarr].")
@click.option("--scored-only", is_flag=True, help="Only the 496 basins with scores (default: all 627).")
@click.option("--catalog", metavar="PATH", help="Catalog ('' to skip) [default: <work dir>/catalog.yaml].")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
def ingest_ctsm_camels_cmd(data_dir, basins_store, out, scored_only, catalog, overwrite) -> None:
    """The real CTSM ensemble of Tang, Wood & Swenson (2025): 201 trials x 627 basins -> ensemble store."""
    from lsegeo.workflows.ctsm import ingest_ctsm_camels

    _echo_table_ingest(ingest_ctsm_camels(data_dir=data_dir, basins_store=basins_store, out=out,
                                          scored_only=scored_only, catalog=catalog, overwrite=overwrite, call=_call()))


@main.command()
@click.argument("iteration0", type=click.Path(exists=True, path_type=Path))
@click.option("--store", type=click.Path(path_type=Path), required=True,
              help="Calibration store (a copy of ITERATION0 when absent).")
@click.option("--basins-store", type=click.Path(exists=True, path_type=Path), help="[default: ITERATION0's].")
@click.option("--paramfile", help="Base CTSM parameter file.")
@click.option("--surfdata", help="Base surface dataset; {basin} is replaced by the gauge id.")
@click.option("--ctsm-version", default="5.1", show_default=True, help="CTSM layout or tag (ctsm5.3.012, ...).")
@click.option("--history-glob", default="output/*.clm2.h1.*.nc", show_default=True,
              help="A member's daily history files, relative to its folder.")
@click.option("--proposals", type=click.IntRange(1), default=10, show_default=True, help="Members per basin.")
@click.option("--backend", default="xgboost", show_default=True, help="LSE backend.")
@click.option("--root", type=click.Path(path_type=Path), help="Case inputs folder [default: <store>.hpc].")
@click.option("--workers", type=click.IntRange(1), help="Local worker processes.")
@click.option("--overwrite", is_flag=True, help="Start the calibration store afresh from ITERATION0.")
def propose(iteration0, store, basins_store, paramfile, surfdata, ctsm_version, history_glob, proposals, backend,
            root, workers, overwrite) -> None:
    """Propose the next iteration on the LSE and write it as CTSM case inputs with a manifest (for HPC)."""
    from lsegeo.calibration.hpc import CtsmCase, propose_hpc_iteration
    from lsegeo.calibration.settings import CalibrationSettings
    from lsegeo.calibration.store import CalibrationPaths
    from lsegeo.emulators.settings import EmulatorSettings
    from lsegeo.io.stores import root_attrs
    from lsegeo.optimise.settings import ProposalSettings
    from lsegeo.parallel import ClusterSettings, dask_client

    basins_store = basins_store or Path(root_attrs(iteration0)["lsegeo_basins_store"])
    paths = CalibrationPaths(iteration0=iteration0, store=store, basins_store=basins_store)
    settings = CalibrationSettings(emulator=EmulatorSettings(backend=backend),
                                   proposal=ProposalSettings(n_proposals=proposals))
    job = {"calibrate": {"proposals": proposals, "backend": backend,
                         "backend_options": dict(settings.emulator.backend_options),
                         "local_share": settings.proposal.local_share},
           "iteration0": str(iteration0.resolve())}
    case = CtsmCase(paramfile, surfdata, ctsm_version, history_glob)
    with dask_client(ClusterSettings(n_workers=workers) if workers else None, None) as client:
        manifest = propose_hpc_iteration(paths, settings, case, client=client, job=job, root=root,
                                         overwrite=overwrite)
    click.echo(f"manifest {manifest}")


@main.command()
@click.argument("manifest", type=_EXISTING_FILE)
def collect(manifest: Path) -> None:
    """Score the members of MANIFEST whose history files have arrived; the others stay pending."""
    from lsegeo.calibration.hpc import collect_iteration

    c = collect_iteration(manifest, call=_call())
    click.echo(f"{c['done']} done, {c['failed']} failed, {c['missing']} without history yet; "
               f"{c['pending']} pending in the store")


@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace an ensemble store made from another configuration.")
@click.option("--workers", type=click.IntRange(1), help="Local worker processes (overrides cluster.n_workers).")
@click.option("--figure", type=click.Path(path_type=Path), help="Also save a PNG: CDFs of KGE' across basins.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ensemble(config_path: Path, overwrite: bool, workers: int | None, figure: Path | None, quiet: bool) -> None:
    """Run the ensemble of CONFIG (a YAML file; see docs/configuration.md, section ensemble).

    Draws a seeded Latin hypercube design (the default member first) of the model's parameters,
    runs every member over the chosen basins on the dask cluster, and scores each run against
    the observations on the calibration and test periods. The store is the checkpoint: run the
    same command again after an interruption and only the unfinished members run. A model that
    runs as external jobs (model: ctsm) gets its store with every member pending; `lsegeo launch
    CONFIG` runs them (docs/ctsm.md).
    """
    from lsegeo.config import apply_overrides, load_config
    from lsegeo.workflows.ensemble import ensemble_job, ensemble_report, format_ensemble_report, format_external_design

    cfg = apply_overrides(load_config(config_path), {"ensemble.overwrite": overwrite or None,
                                                     "cluster.n_workers": workers})
    store, stats = ensemble_job(cfg, progress=not quiet, call=_call())
    if stats.get("external"):  # e.g. CTSM: the store's members stay pending for `lsegeo launch`
        click.echo(format_external_design(store, stats, config_path))
        return
    click.echo(format_ensemble_report(ensemble_report(store, stats, figure)))


@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Start the calibration store afresh from iteration 0.")
@click.option("--workers", type=click.IntRange(1), help="Local worker processes (overrides cluster.n_workers).")
@click.option("--figure", type=click.Path(path_type=Path), help="Also save a PNG: CDFs of the best KGE' per iteration.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def calibrate(config_path: Path, overwrite: bool, workers: int | None, figure: Path | None, quiet: bool) -> None:
    """Calibrate every basin of CONFIG with the emulator loop (Tang, Wood & Swenson 2025).

    \b
    Iteration 0 is the ensemble of the config's `ensemble` section (run first if absent).
    Each further iteration (section `calibrate`):
      1. fits the emulator on every member so far: the large-sample emulator (LSE, one model
         over all basins, attributes + parameters -> score) or single-site emulators (SSE);
         its grouped cross-validation skill is printed and saved with it;
      2. optimises every basin on the emulator (GA, or NSGA-II for two objectives), all basins
         together, and proposes `proposals` new members per basin;
      3. runs them through the model and appends them; the best simulated member of each basin
         is its calibrated parameter set.
    The store is the checkpoint: after an interruption, the same command resumes at the first
    unfinished step.
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.config import load_config
    from lsegeo.workflows.calibrate import calibrate_job, calibration_figure

    cfg = load_config(config_path)
    if overwrite:
        cfg.calibrate.overwrite = True
    if workers:
        cfg.cluster.n_workers = workers
    store = calibrate_job(cfg, progress=not quiet, call=_call())
    click.echo(f"calibration store   {store} (group 'calibration': best scores per iteration, calibrated "
               f"parameters; emulators in {basename(store)}.emulators/)")
    if figure:
        click.echo(f"figure: {calibration_figure(store, figure)}")


@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace an existing direct-calibration store.")
@click.option("--workers", type=click.IntRange(1), help="Local worker processes (overrides cluster.n_workers).")
@click.option("--budget", type=click.IntRange(1), help="Model runs per basin (overrides direct.budget).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def direct(config_path: Path, overwrite: bool, workers: int | None, budget: int | None, quiet: bool) -> None:
    """Calibrate every basin of CONFIG directly with the model, by DDS (section `direct`).

    \b
    Each basin's search (Tolson & Shoemaker 2007) starts from the model's default parameter
    set and spends direct.budget model runs (the default set included) in direct.chains
    lock-step chains, scoring the calibration period only; the best set is then scored on
    every period. Basins run in parallel on the dask cluster of the `cluster` section. The
    store (default <work dir>/direct_<model>.zarr, group 'direct') holds the best parameters,
    the best and default scores per period and the best-so-far history per run; it is the
    reference that `lsegeo compare --direct` sets the emulator calibrations against.
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.config import apply_overrides, load_config
    from lsegeo.workflows.direct import direct_job, direct_report, format_direct_report

    cfg = apply_overrides(load_config(config_path), {"direct.overwrite": overwrite or None,
                                                     "direct.budget": budget, "cluster.n_workers": workers})
    store, ds = direct_job(cfg, progress=not quiet, call=_call())
    click.echo(format_direct_report(direct_report(store, ds)))


@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workers", type=click.IntRange(1),
              help="Local worker processes, or HPC jobs (overrides cluster.n_workers).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def launch(config_path: Path, workers: int | None, quiet: bool) -> None:
    """Run the pending members of an ensemble store with an external model (section `external`).

    \b
    One dask task per pending (basin, member), on the cluster of the `cluster` section:
      1. the member's folder <external.work_root>/<basin>/member_<NNNNN>/ gets its inputs
         (external.inputs_writer: the values as JSON, or CTSM's parameter file, surface
         dataset and user_nl_clm);
      2. external.command, rendered into an argument list, runs there without a shell (e.g.
         create_clone --keepexe, xmlchange, case.submit; see deploy/ctsm_launch.yaml);
      3. its daily history files are read and scored into the store (external.store, default
         the ensemble section's store); a failed member is recorded with its exit status and
         the last lines of its log.
    The store is the checkpoint: a finished member is never run again, so the same command
    after an interruption runs only what is left. See docs/ctsm.md.
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.config import apply_overrides, load_config
    from lsegeo.workflows.launch import format_launch_report, launch_job

    cfg = apply_overrides(load_config(config_path), {"cluster.n_workers": workers})
    store, stats = launch_job(cfg, progress=not quiet, call=_call())
    click.echo(format_launch_report(store, stats))


def _power_of_two(ctx, param, value: int | None) -> int | None:
    """Click callback: accept only a power of 2 (the base sample of a Saltelli design), or nothing."""
    if value is not None and (value < 2 or value & (value - 1)):
        raise click.BadParameter(f"must be a power of 2 (the Sobol' sequence is balanced only then), got {value}")
    return value


@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--iteration", "-k", type=click.IntRange(1),
              help="Analyse the emulator saved for this calibration iteration [default: the latest completed one].")
@click.option("--out", type=click.Path(path_type=Path),
              help="Output store [default: <work dir>/sensitivity_lse.zarr].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output store.")
@click.option("--figures", type=click.Path(file_okay=False, path_type=Path),
              help="Save figures in this directory: heat map of the mean normalised S1 per cluster, and maps of S1 "
                   "for the most influential parameters.")
@click.option("--maps", "n_maps", type=click.IntRange(0),
              help="Parameters mapped with --figures (those of largest mean normalised S1) [default: "
                   "sensitivity.maps, 4].")
@click.option("--check", type=click.IntRange(0), metavar="N",
              help="Also estimate S1 directly from the iteration-0 members of N basins drawn reproducibly "
                   "(RBD-FAST, no emulator) and print its agreement with the emulator's S1 [default: "
                   "sensitivity.check, 0].")
@click.option("--share", type=click.FloatRange(0, 1, min_open=True), metavar="SHARE",
              help="Print, per cluster, the parameters carrying SHARE of the summed S1 (0.85 in the study).")
@click.option("--n-base", type=int, callback=_power_of_two,
              help="Base sample N of the Saltelli design, a power of 2: N x (D + 2) emulator evaluations per basin "
                   "[default: sensitivity.n_base, 512].")
@click.option("--seed", type=int,
              help="Seed of the sample, bootstraps and check [default: calibrate.seed + iteration, the seed of the "
                   "calibration's own screening].")
@click.option("--target", help="Emulator target analysed [default: the first of calibrate.objectives].")
def sensitivity(config_path: Path, iteration: int | None, out: Path | None, overwrite: bool, figures: Path | None,
                n_maps: int | None, check: int | None, share: float | None, n_base: int | None, seed: int | None,
                target: str | None) -> None:
    """Sobol' sensitivity of the calibration target to every parameter, per basin, on the LSE.

    \b
    The large-sample emulator of CONFIG's calibration (calibrate.store) is the model:
      - by default the emulator of the latest completed iteration (<store>.emulators/
        iteration_<k>/ with its COMPLETE marker), or that of --iteration K;
      - when the calibration has saved none, an LSE is fitted on the iteration-0 ensemble
        exactly as calibration iteration 1 would fit it (and not saved);
      - single-site emulators (calibrate.emulator: sse) are refused: the screening evaluates
        every basin at N x (D + 2) parameter sets at once, which is what the LSE is for.
    One Saltelli sample of the unit cube of the parameter space serves every basin; SALib
    gives the first-order (S1) and total (ST) indices with bootstrap intervals. The store
    (zarr v3, group 'sensitivity', with provenance) holds S1, ST, S1_conf, ST_conf, y_mean and
    y_std over basin x param. See docs/sensitivity.md.
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.config import load_config
    from lsegeo.workflows.sensitivity import sensitivity_job

    cfg = load_config(config_path)
    sensitivity_job(cfg, iteration=iteration, out=out, overwrite=overwrite, n_base=n_base, seed=seed, target=target,
                    figures=figures, n_maps=n_maps, check=check, share=share, call=_call())


def _labelled(ctx, param, values: tuple[str, ...]) -> dict[str, Path]:
    """Click callback: LABEL=STORE pairs (or bare STOREs, labelled by their names) to a dict."""
    out: dict[str, Path] = {}
    for v in values:
        label, sep, path = v.partition("=")
        label, path = (label, path) if sep else (Path(v).stem, v)
        if not Path(path).exists():
            raise click.BadParameter(f"{path} does not exist (expected LABEL=STORE or STORE)")
        if label in out:
            raise click.BadParameter(f"the label {label!r} is given twice")
        out[label] = Path(path)
    return out


@main.command()
@click.argument("calibrations", nargs=-1, metavar="[LABEL=]STORE...", callback=_labelled)
@click.option("--direct", "direct", multiple=True, metavar="[LABEL=]STORE", callback=_labelled,
              help="A direct-calibration (DDS) store to compare with; repeatable.")
@click.option("--objective", default="kgeprime", show_default=True, help="The score compared.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table here (.md).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the table here (.csv).")
@click.option("--figure", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save a PNG: CDFs across basins of each method's final best score, per period.")
def compare(calibrations: dict[str, Path], direct: dict[str, Path], objective: str, markdown: Path | None,
            csv_path: Path | None, figure: Path | None) -> None:
    """Compare calibrations of the same basins: LSE against SSE, and against direct calibration.

    
    Each STORE is a calibration store of `lsegeo calibrate` (one row per iteration) and
    each --direct STORE a DDS store (`lsegeo.calibration.direct.calibrate_direct`; one row per budget
    of the calibrations, 1,000 runs and its full budget). For every row: the runs per basin
    and the median over basins of the best score on the calibration and the test period,
    with a percentile-bootstrap 95% interval. Only the basins that all stores share count.
    Example:
      lsegeo compare LSE=work/calibration_lse.zarr SSE=work/calibration_sse.zarr \\
        --direct DDS=work/direct_dds.zarr --figure work/figures/compare.png
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.calibration.comparison import comparison_table, final_best_scores, format_comparison
    from lsegeo.plots.comparison import plot_comparison

    if not calibrations and not direct:
        raise click.UsageError("give at least one calibration STORE or --direct STORE")
    table = comparison_table(calibrations, direct, objective=objective)
    text = format_comparison(table, objective="KGE'" if objective == "kgeprime" else objective)
    click.echo(text)
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text + "\n")
        click.echo(f"table: {markdown}")
    if csv_path:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(csv_path, index=False)
        click.echo(f"table: {csv_path}")
    if figure:
        panels = final_best_scores(calibrations, direct, objective=objective)
        click.echo(f"figure: {plot_comparison(panels, figure, objective=objective)}")


@main.command()
@click.argument("store", type=click.Path(exists=True, path_type=Path))
@click.option("--figure", type=click.Path(path_type=Path), help="Also save a PNG: gauge map and CDF of observed days.")
def summary(store: Path, figure: Path | None) -> None:
    """Print what a basins store holds: basins, period, missing observations, attributes."""
    from lsegeo.io.summary import format_summary, summarize_basins
    from lsegeo.plots.summary import plot_basins_summary

    click.echo(format_summary(summarize_basins(store)))
    if figure:
        click.echo(f"figure: {plot_basins_summary(store, figure)}")


@main.group()
def catalog() -> None:
    """Register lsegeo stores in an intake 2 catalog and list its entries."""


@catalog.command("add")
@click.argument("stores", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--catalog", "catalog_path", type=click.Path(path_type=Path),
              help="Catalog file, created when absent [default: <work dir>/catalog.yaml].")
@click.option("--name", help="Entry prefix (only with one store) [default: the store's name without .zarr].")
def catalog_add(stores, catalog_path: Path | None, name: str | None) -> None:
    """(Re)write the catalog entries of STORES: one data entry per store, one reader per group."""
    from lsegeo.io.catalog import register_store
    from lsegeo.locations import catalog_path as default_catalog

    if name and len(stores) > 1:
        raise click.UsageError("--name can only be given with a single store")
    for store in stores:
        click.echo(f"{store}: {', '.join(register_store(store, catalog_path or default_catalog(), name))}")


@catalog.command("list")
@click.option("--catalog", "catalog_path", type=click.Path(path_type=Path),
              help="Catalog file [default: <work dir>/catalog.yaml].")
def catalog_list(catalog_path: Path | None) -> None:
    """List the reader entries of a catalog."""
    from lsegeo.io.catalog import catalog_entries
    from lsegeo.locations import catalog_path as default_catalog

    for key, desc in catalog_entries(catalog_path or default_catalog()).items():
        click.echo(f"{key:32s} {desc}")


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Directory holding camels_us/.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="Output directory [default: LSEGEO_WORK_DIR, else ./work].")
@click.option("--workers", type=click.IntRange(1), help="Local worker processes [default: number of cores, at most 4].")
def demo(data_dir: Path | None, work_dir: Path | None, workers: int | None) -> None:
    """Run the main job end to end on the embedded defaults (about ten minutes on 2 cores).

    \b
    1. ingest the full CAMELS-US data set on a local dask cluster into
       <work dir>/camels_basins.zarr, register it in <work dir>/catalog.yaml and open it
       lazily through the catalog;
    2. run iteration 0 of the calibration: 200 members of the embedded HBV model over every
       basin with observed streamflow, scored on the calibration and test periods, into
       <work dir>/ensemble_hbv.zarr;
    3. one short iteration of the LSE calibration loop (20 proposals per basin) into
       <work dir>/calibration_lse.zarr;
    4. regionalize by lse-optimise to every basin without observed streamflow and to the
       0.125-degree NLDAS grid over CONUS: products (zarr, netCDF, PROV-JSON, catalog
       entries) and maps in <work dir>/products;
    5. print summaries and save figures in <work dir>/figures.
    Everything is written below the work directory; earlier demo stores are replaced.
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.io.summary import format_summary
    from lsegeo.workflows.demo import demo_job
    from lsegeo.workflows.ensemble import format_ensemble_report
    from lsegeo.workflows.regionalize import format_regionalize_report

    result = demo_job(data_dir=data_dir, work_dir=work_dir, workers=workers, call=_call())
    ing = result.ingest
    click.echo(format_summary(ing.summary))
    click.echo(f"catalog {ing.catalog}: {', '.join(ing.entries)} (forcing opens lazily: {result.lazy_arrays} arrays)")
    click.echo(f"figure: {result.basins_figure}")
    click.echo(format_ensemble_report(result.ensemble))
    click.echo(f"calibration store {result.calibration}: median best KGE' over the basins")
    for label, per in result.calibrated.items():
        click.echo(f"  {label:<12} " + ", ".join(f"{p} {v:.3f}" for p, v in per.items()))
    click.echo(format_regionalize_report(result.regionalization))
    click.echo("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()))
