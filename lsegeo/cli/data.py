"""The commands of input data: ``lsegeo data fetch camels``."""

from __future__ import annotations

from pathlib import Path

import click

from lsegeo.cli.base import main

__all__ = ["data"]


@main.group()
def data() -> None:
    """Get input data into the data directory."""


@data.command("fetch")
@click.argument("dataset", type=click.Choice(["camels"]))
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path),
              help="Data directory to fetch into (files go below DEST/camels_us) [default: the data directory, "
                   "or LSEGEO_DATA_DIR].")
@click.option("--base-url", metavar="URL",
              help="Where the files are [default: LSEGEO_CAMELS_URL, else NCAR, https://gdex.ucar.edu].")
@click.option("--source", type=click.Choice(["mirror", "official"]),
              help="mirror: a server with lsegeo's layout; official: NCAR's published files, re-laid out "
                   "[default: mirror when a base URL is set, else official].")
@click.option("--only", metavar="GROUPS",
              help="Comma-separated groups, or 'all' [default: attributes,forcing,streamflow, what "
                   "`lsegeo ingest camels` reads]. Groups: attributes, forcing, streamflow, streamflow_qc, maurer, "
                   "nldas, attributes_extra, shapes, model_outputs, model_parameters.")
@click.option("--basins", metavar="IDS", help="Comma-separated gauge ids whose per-gauge files to fetch "
                                              "[default: all]; tables are fetched whole.")
@click.option("--overwrite", is_flag=True, help="Replace present files whose hash differs (else they are refused).")
@click.option("--workers", type=click.IntRange(1, 32), default=4, show_default=True, help="Files fetched at once.")
@click.option("--allow-unverified", is_flag=True,
              help="official: download NCAR's time-series archive without a known checksum (the files taken from it "
                   "are still checked against the manifest).")
@click.option("--archive-hash", metavar="HASH",
              help="official: the published checksum of the time-series archive, md5:... or sha256:....")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def fetch(dataset: str, dest: Path | None, base_url: str | None, source: str | None, only: str | None,
          basins: str | None, overwrite: bool, workers: int, allow_unverified: bool, archive_hash: str | None,
          quiet: bool) -> None:
    """Download DATASET (camels: CAMELS-US) into the data directory, every file SHA-256 checked.

    \b
    Each file is checked against lsegeo's manifest (lsegeo/data/camels_us_manifest.csv: path,
    size, SHA-256) before it is moved into place, so a cut-short or damaged download leaves
    nothing behind. Files already present with the right hash are skipped, so running the
    command again resumes; a present file with another hash is refused unless --overwrite.
    Cite Newman et al. (2015) and Addor et al. (2017) (docs/data.md).
    """  # noqa: D301 (click needs a real \x08 for "\b"; r""" would break it)
    from lsegeo.ingest.fetch import fetch_camels, format_fetch_report

    ids = [b.strip() for b in basins.split(",") if b.strip()] if basins else None
    if basins is not None and not ids:
        raise click.BadParameter("lists no gauge id", param_hint="'--basins'")
    report = fetch_camels(dest, base_url=base_url, source=source, only=only, basins=ids, progress=not quiet,
                          overwrite=overwrite, workers=workers, allow_unverified=allow_unverified,
                          archive_hash=archive_hash)
    click.echo(format_fetch_report(report))
