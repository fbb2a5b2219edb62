"""The commands of regionalization and products: ``regionalize``, ``crossval``, ``evaluate``, ``provenance``."""

from __future__ import annotations

from pathlib import Path

import click

from lsegeo.cli.base import call_line, main

__all__: list[str] = []

_CONFIG = click.Path(exists=True, dir_okay=False, path_type=Path)


def _config(path: Path, overwrite: bool = False, workers: int | None = None):
    from lsegeo.config import load_config

    cfg = load_config(path)
    if overwrite:
        cfg.regionalize.overwrite = True
    if workers:
        cfg.cluster.n_workers = workers
    return cfg


@main.command()
@click.argument("config_path", metavar="CONFIG", type=_CONFIG)
@click.option("--overwrite", is_flag=True, help="Replace products that lsegeo wrote before.")
@click.option("--workers", type=click.IntRange(1), help="Local worker processes (overrides cluster.n_workers).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def regionalize(config_path: Path, overwrite: bool, workers: int | None, quiet: bool) -> None:
    """Regionalize calibrated parameters to the domains of CONFIG and write the products.

    \b
    Section `regionalize` (docs/regionalization.md, docs/domains.md, docs/products.md):
      1. the calibrated basins of `store` teach the emulators (nothing else is seen);
      2. a spatial cross-validation of `method` on `interval_scheme` folds, with real runs,
         calibrates the 90% score interval (split-conformal, per PUR region with
         interval_groups: pur; checkpointed in crossval_dir);
      3. every domain (basins, a table, a regular grid, a CTSM surface dataset's grid) gets
         K parameter sets per target by `method`: default, donor-nearest, donor-similar,
         donor-ensemble (the mean flow of its K donor sets), lse-select, lse-optimise or
         lse-amortised;
      4. products in `output`: <name>.zarr (master) and <name>.nc with CF-1.11/ACDD-1.3
         metadata, score_predicted/lower/upper, applicability, PROV-JSON sidecars, catalog
         entries, maps in output/figures; CTSM files for a CTSM store.
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.workflows.regionalize import format_regionalize_report, regionalize_job

    report = regionalize_job(_config(config_path, overwrite, workers), progress=not quiet, call=call_line())
    click.echo(format_regionalize_report(report))


@main.command()
@click.argument("config_path", metavar="CONFIG", type=_CONFIG)
@click.option("--workers", type=click.IntRange(1), help="Local worker processes (overrides cluster.n_workers).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def crossval(config_path: Path, workers: int | None, quiet: bool) -> None:
    """Spatial cross-validation of regionalization methods, with real runs of every proposed set.

    \b
    For every fold scheme of `regionalize.crossval_schemes` (study: every 5th basin; pub: 10
    random folds; pur: 7 groups of HUC-02 regions; flood_cluster: Brunner et al. 2020) the
    emulators and donors see only the training basins; every method of `crossval_methods`
    proposes a set for each held-out basin, which the model runs on both periods. Prints and
    writes (crossval_dir): median KGE' with a bootstrap 95% interval, quartiles, share better
    than the default set, gap closure; interval coverage; CDF figures. Checkpointed per fold.
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.regionalize.crossval import format_table
    from lsegeo.workflows.crossval import crossval_job

    cv, files = crossval_job(_config(config_path, workers=workers), progress=not quiet)
    click.echo(format_table(cv.table))
    for key, path in files.items():
        click.echo(f"{key}: {path}")


@main.command()
@click.argument("product", type=click.Path(exists=True, path_type=Path))
@click.option("--observed", required=True, type=click.Path(exists=True, path_type=Path),
              help="Observed streamflow: a basins store, or a CAMELS-layout table (date, one column per gauge, cfs).")
@click.option("--config", "config_path", type=_CONFIG, help="YAML with the basins store, periods and cluster.")
@click.option("--out", type=click.Path(path_type=Path), help="Report file [default: PRODUCT.evaluation.txt].")
@click.option("--workers", type=click.IntRange(1), help="Local worker processes.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def evaluate(product: Path, observed: Path, config_path: Path | None, out: Path | None, workers: int | None,
             quiet: bool) -> None:
    """Run a basin PRODUCT's parameters with the embedded model and score them against --observed.

    A product that predicts with the mean flow of its samples (lsegeo_response = mean, e.g.
    donor-ensemble) has every sample run and their mean flow scored. Prints per period the median
    KGE' with a bootstrap 95% interval, the quartiles and the share of basins better than with the
    default set, and writes them (and a CSV per basin) beside PRODUCT or to --out (give --out when
    the products folder is read-only).
    """
    from lsegeo.config import load_config
    from lsegeo.regionalize.evaluate import format_evaluation
    from lsegeo.workflows.crossval import evaluate_job

    cfg = load_config(config_path)
    if workers:
        cfg.cluster.n_workers = workers
    ev, path = evaluate_job(cfg, product, observed, out=out, progress=not quiet)
    click.echo(format_evaluation(ev))
    click.echo(f"report: {path}")


@main.command()
@click.argument("product", type=click.Path(exists=True, path_type=Path))
def provenance(product: Path) -> None:
    """Print the lineage of PRODUCT: inputs with hashes, configuration, emulator, code version, steps."""
    from lsegeo.products import format_lineage, lineage

    click.echo(format_lineage(lineage(product)))
