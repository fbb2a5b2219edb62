"""The notebooks of ``notebooks/``: committed without outputs, and each one runs on a clean work directory.

The three notebooks are executed with nbclient on the kernel ``python3`` (the test's own Python),
from ``notebooks/`` as the working directory, with ``LSEGEO_WORK_DIR`` set to one temporary folder
and ``LSEGEO_DATA_DIR`` to the data of the ``data_dir`` fixture (so they are integration tests).
``03-products`` works on the stores of ``01-quickstart``, which is run first when it has not run yet.
A cell that raises fails its test; each notebook's last cell asserts what its results must show
(for the quickstart: the calibrated median KGE' above the default's), and the tests check the
files left in the work directory and that nothing was written into the repository.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: every notebook, in the order they build on each other
ORDER = ("01-quickstart.ipynb", "02-ctsm-ensemble.ipynb", "03-products.ipynb")
#: seconds a single cell may run
CELL_TIMEOUT = 300


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder``: relative path -> (size, modification time in ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


class _Runs:
    """Executes notebooks once each, in one work directory, and remembers how long each took."""

    def __init__(self, work: Path, data: Path) -> None:
        self.work, self.data = work, data
        self.done: dict[str, nbformat.NotebookNode] = {}
        self.seconds: dict[str, float] = {}

    def run(self, name: str) -> nbformat.NotebookNode:
        from nbclient import NotebookClient

        if name in self.done:
            return self.done[name]
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        before = _files(NOTEBOOKS)
        fallback = NOTEBOOKS.parent / "work" / "notebooks"
        fallback_existed = fallback.exists()
        t0 = time.perf_counter()
        with pytest.MonkeyPatch.context() as mp:  # the kernel inherits this process's environment
            mp.setenv("LSEGEO_WORK_DIR", str(self.work))
            mp.setenv("LSEGEO_DATA_DIR", str(self.data))
            NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                           resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        self.seconds[name] = time.perf_counter() - t0
        print(f"{name}: executed in {self.seconds[name]:.1f} s")
        assert _files(NOTEBOOKS) == before, f"{name} wrote into {NOTEBOOKS}"
        assert fallback.exists() == fallback_existed, f"{name} ignored LSEGEO_WORK_DIR and wrote {fallback}"
        self.done[name] = nb
        return nb


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory) -> _Runs:
    return _Runs(tmp_path_factory.mktemp("notebooks_work"), data_dir)


def _outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") + str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def _images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


def test_notebooks_are_committed_without_outputs():
    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert found == sorted(ORDER), "a new notebook must be added to ORDER so that it is executed"
    for name in ORDER:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", name
        assert nb.cells[0].cell_type == "markdown", f"{name} must open with a text cell saying what it needs"
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} cell {i} has outputs"


def test_quickstart_ingests_calibrates_and_regionalizes(runs):
    import xarray as xr

    nb = runs.run("01-quickstart.ipynb")
    text = _outputs_text(nb)
    assert "median KGE' on the calibration period: default" in text
    assert _images(nb) >= 4  # iteration 0, calibration CDFs, hydrograph, parameter map
    work = runs.work
    for store in ("camels_basins.zarr", "ensemble_hbv.zarr", "calibration_lse.zarr",
                  "products/quickstart_basins.zarr", "evaluations/quickstart_basins.zarr"):
        assert (work / store).is_dir(), store
    with xr.open_dataset(work / "products" / "quickstart_basins.nc") as ds:
        assert sorted(str(b) for b in ds["basin"].values) == ["01013500", "01052500", "01057000", "01073000"]
        assert ds.attrs["lsegeo_method"] == "donor-similar"
    assert "quickstart_basins_netcdf" in (work / "catalog.yaml").read_text()


def test_ctsm_notebook_measures_skill_and_selection_on_held_out_basins(runs):
    import xarray as xr

    nb = runs.run("02-ctsm-ensemble.ipynb")
    text = _outputs_text(nb)
    assert "627 basins, 496 with scores, 201 trials, 21 failed in every basin" in text
    assert "lse-select (held out)" in text and _images(nb) >= 3
    with xr.open_dataset(runs.work / "products" / "ctsm_unscored.nc") as ds:
        assert ds.attrs["lsegeo_model"] == "ctsm" and ds.sizes["basin"] == 671 - 496
        assert (ds["selected_member"].values >= 0).all()


def test_products_notebook_reads_the_catalog_and_the_provenance(runs):
    runs.run("01-quickstart.ipynb")  # its stores are this notebook's inputs
    nb = runs.run("03-products.ipynb")
    text = _outputs_text(nb)
    assert "FC is a dask array: nothing read yet" in text and "stale entries: none" in text
    assert "calibration_lse.zarr" in text and _images(nb) >= 2
    product = runs.work / "products" / "new_england_050.nc"
    assert product.is_file() and product.with_name(product.name + ".prov.json").is_file()
    print("notebook seconds:", {k: round(v, 1) for k, v in runs.seconds.items()})
