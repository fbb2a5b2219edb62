"""Parameter screening (lsegeo.sensitivity) on analytic functions with known Sobol' indices.

The predictor is the Ishigami function (Ishigami & Homma 1990) of three of the parameters, a
different three and different coefficients per basin, the other parameters inert: its first- and
total-order indices are known in closed form, so the Saltelli machinery, the batching over
basins and the given-data estimators are checked exactly, not against another code.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from lsegeo import sensitivity as sens
from lsegeo.design import Parameter, ParameterSpace, latin_hypercube
from lsegeo.errors import DataNotFoundError, InputFormatError, StoreError
from lsegeo.plots.sensitivity import basin_coords, plot_cluster_heatmap, plot_sensitivity_map

D = 7
NAMES = [f"p{i}" for i in range(D)]


class Ishigami:
    """Per-basin Ishigami functions on the unit cube, with a ``predict(basin_idx, u)`` interface."""

    def __init__(self, n_basins: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.a = rng.uniform(4.0, 8.0, n_basins)
        self.b = rng.uniform(0.05, 0.12, n_basins)
        self.active = np.array([rng.permutation(D)[:3] for _ in range(n_basins)])
        self.basins = [f"{10000000 + i:08d}" for i in range(n_basins)]
        self.param_names = list(NAMES)
        self.calls: list[int] = []

    def predict(self, basin_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        self.calls.append(len(basin_idx))
        assert u.shape == (len(basin_idx), D)
        x = -np.pi + 2 * np.pi * np.take_along_axis(u, self.active[basin_idx], axis=1)
        a, b = self.a[basin_idx], self.b[basin_idx]
        y = np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])
        return np.stack([y, -2.0 * y + 1.0], axis=1)   # two targets with the same indices

    def truth(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact S1 and ST of basin i over all D parameters."""
        a, b = self.a[i], self.b[i]
        v = a ** 2 / 8 + b * np.pi ** 4 / 5 + b ** 2 * np.pi ** 8 / 18 + 0.5
        v1, v2, v13 = 0.5 * (1 + b * np.pi ** 4 / 5) ** 2, a ** 2 / 8, 8 * b ** 2 * np.pi ** 8 / 225
        s1, st = np.zeros(D), np.zeros(D)
        s1[self.active[i]] = [v1 / v, v2 / v, 0.0]
        st[self.active[i]] = [(v1 + v13) / v, v2 / v, v13 / v]
        return s1, st


def test_sobol_on_emulator_recovers_ishigami_indices():
    f = Ishigami(8)
    ds = sens.sobol_on_emulator(f.predict, np.arange(8), NAMES, basins=f.basins, n_base=4096, seed=3)
    assert ds["S1"].dims == ("basin", "param") and list(ds["param"].values) == NAMES
    assert list(ds["basin"].values) == f.basins
    for i in range(8):
        s1, st = f.truth(i)
        np.testing.assert_allclose(ds["S1"].values[i], s1, atol=0.04)
        np.testing.assert_allclose(ds["ST"].values[i], st, atol=0.04)
        # the bootstrap intervals cover the error
        assert np.all(np.abs(ds["S1"].values[i] - s1) <= 2 * ds["S1_conf"].values[i] + 1e-12)
        inert = np.setdiff1d(np.arange(D), f.active[i])
        # an inert parameter leaves A and AB_j identical: both estimators give exactly 0
        assert np.all(np.abs(ds["S1"].values[i, inert]) < 1e-12)
        assert np.all(np.abs(ds["ST"].values[i, inert]) < 1e-12)
    assert ds.attrs["lsegeo_n_evaluations"] == 4096 * (D + 2)
    assert np.all(ds["y_std"].values > 0)


def test_predict_calls_are_few_and_independent_of_basins():
    f = Ishigami(30)
    one = sens.sobol_on_emulator(f.predict, [5], NAMES, n_base=256, seed=1)
    assert len(f.calls) == 1
    f.calls.clear()
    many = sens.sobol_on_emulator(f.predict, np.arange(30), NAMES, n_base=256, seed=1)
    assert len(f.calls) == 1 and many.attrs["lsegeo_n_predict_calls"] == 1
    ns = 256 * (D + 2)
    assert f.calls == [30 * ns]
    # the same sample for every basin: basin 5 alone and among 30 give the same indices
    np.testing.assert_allclose(one["S1"].values[0], many["S1"].values[5])

    # chunked: a call never exceeds max_rows, results unchanged
    f.calls.clear()
    chunked = sens.sobol_on_emulator(f.predict, np.arange(30), NAMES, n_base=256, seed=1, max_rows=4 * ns + 7)
    assert len(f.calls) == int(np.ceil(30 * ns / (4 * ns + 7))) == 8
    assert max(f.calls) <= 4 * ns + 7
    xr.testing.assert_allclose(chunked[["S1", "ST"]], many[["S1", "ST"]])

    # an emulator object: basins and param_names come from it; target 1 is a linear map of target 0
    f.calls.clear()
    other = sens.sobol_on_emulator(f, np.array([2, 7]), n_base=256, seed=1, target=1)
    assert list(other["basin"].values) == [f.basins[2], f.basins[7]]
    assert list(other["basin_idx"].values) == [2, 7]
    np.testing.assert_allclose(other["S1"].values, many["S1"].values[[2, 7]], atol=1e-10)


def test_sobol_nonfinite_basin_gives_nan_and_bad_arguments_fail():
    def predict(bi, u):
        y = np.sin(2 * np.pi * u[:, 0]) + u[:, 1]
        return np.where(bi == 1, np.nan, y)

    with pytest.warns(RuntimeWarning, match="1 of 2 basins"):
        ds = sens.sobol_on_emulator(predict, [0, 1], ["x", "y"], n_base=128)
    assert np.isfinite(ds["S1"].values[0]).all() and np.isnan(ds["S1"].values[1]).all()
    with pytest.raises(ValueError, match="power of 2"):
        sens.sobol_on_emulator(predict, [0], ["x", "y"], n_base=100)
    with pytest.raises(ValueError, match="param_names"):
        sens.sobol_on_emulator(predict, [0])


def _unit_space() -> ParameterSpace:
    return ParameterSpace(tuple(Parameter(n, 0.0, 1.0, 0.5) for n in NAMES), "unit")


def _lhs_ensemble(f: Ishigami, n_members: int) -> xr.Dataset:
    """An in-memory ensemble (as lsegeo.ensembles.store lays it out) of the analytic function on an LHS."""
    space = _unit_space()
    nb = len(f.basins)
    params = np.stack([latin_hypercube(space, n_members, seed=10 + i) for i in range(nb)])
    y = np.stack([f.predict(np.full(n_members, i), space.to_unit(params[i]))[:, 0] for i in range(nb)])
    scores = np.stack([y, y], axis=-1)[:, :, None, :]                       # period, objective
    status = np.ones((nb, n_members), dtype="int8")
    status[0, 3] = 2                                                          # a failed member
    return xr.Dataset(
        {"params": (("basin", "member", "param"), params),
         "scores": (("basin", "member", "period", "objective"), scores),
         "status": (("basin", "member"), status),
         "iteration": ("member", np.zeros(n_members, dtype="int32")),
         "param_lower": ("param", space.lower), "param_upper": ("param", space.upper),
         "param_scale": ("param", np.array(["linear"] * D, dtype=object))},
        coords={"basin": np.array(f.basins, dtype=object), "param": np.array(NAMES, dtype=object),
                "period": np.array(["calibration"], dtype=object),
                "objective": np.array(["nkgeprime", "kgeprime"], dtype=object)},
    )


def test_given_data_estimators_agree_with_known_s1_on_a_latin_hypercube():
    f = Ishigami(3, seed=5)
    u = _unit_space().to_unit(latin_hypercube(_unit_space(), 1000, seed=2))
    y = f.predict(np.zeros(1000, dtype=int), u)[:, 0]
    s1_true, _ = f.truth(0)
    for method in ("rbd_fast", "binned"):
        s1, conf = sens.first_order_given_data(u, y, NAMES, method=method)
        np.testing.assert_allclose(s1, s1_true, atol=0.07, err_msg=method)
        assert np.isfinite(conf).all() == (method == "rbd_fast")

    ens = _lhs_ensemble(f, 1000)
    est = sens.sensitivity_from_ensemble(ens, objective="nkgeprime", period="calibration")
    assert est["S1"].dims == ("basin", "param")
    assert list(est["n_members"].values) == [999, 1000, 1000]
    for i in range(3):
        np.testing.assert_allclose(est["S1"].values[i], f.truth(i)[0], atol=0.07)
    sub = sens.sensitivity_from_ensemble(ens, [f.basins[1]], ["p6", "p0"], method="binned")
    assert list(sub["param"].values) == ["p6", "p0"]
    np.testing.assert_allclose(sub["S1"].values[0], f.truth(1)[0][[6, 0]], atol=0.07)

    # against the emulator's Sobol' indices of the same functions
    sob = sens.sobol_on_emulator(f, np.arange(3), n_base=1024, seed=0)
    cmp = sens.compare_indices(sob, est, top=2)
    assert cmp["top1_agree"].all() and (cmp["top_overlap"] == 1).all()
    assert (cmp["spearman"] > 0.3).all()
    assert cmp.attrs["share_top1_agree"] == 1.0

    with pytest.raises(ValueError, match="objective 'nse'"):
        sens.sensitivity_from_ensemble(ens, objective="nse")


def test_sensitivity_from_the_real_iteration0_ensemble(small_ensemble_store):
    basins = ["01022500", "01030500", "01054200", "01118300"]
    est = sens.sensitivity_from_ensemble(small_ensemble_store, basins, num_resamples=10)
    assert est.sizes == {"basin": 4, "param": 14}
    assert (est["n_members"] == 100).all()
    s1 = est["S1"].values
    assert np.isfinite(s1).all() and (s1 > -0.3).all() and (s1 < 1).all()
    assert (s1.max(axis=1) > 0.1).all()   # every basin has a parameter that matters


def test_select_parameters_share():
    s = pd.Series([0.05, 0.4, 0.0, 0.3, -0.02, 0.15, 0.1], index=NAMES)
    # normalised: 0.4 + 0.3 + 0.15 = 0.85 exactly (sum 1.0, the negative one clipped)
    assert sens.select_parameters(s, 0.85, by="all") == ["p1", "p3", "p5"]
    assert sens.select_parameters(s, 0.86, by="all") == ["p1", "p3", "p5", "p6"]
    assert sens.select_parameters(s, 0.3, by="all") == ["p1"]
    assert sens.select_parameters(s * 0, 0.85, by="all") == NAMES        # no information: keep all
    with pytest.raises(ValueError, match="by='all'"):
        sens.select_parameters(s, 0.85, by="basin")

    da = xr.DataArray([[0.5, 0.3, 0.1, 0.05, 0.05, 0, 0], [0, 0, 0, 0.1, 0.1, 0.1, 0.7]],
                      dims=("basin", "param"), coords={"basin": ["00000001", "00000002"], "param": NAMES})
    per_basin = sens.select_parameters(da, 0.85, by="basin")
    assert per_basin == {"00000001": ["p0", "p1", "p2"], "00000002": ["p3", "p4", "p6"]}
    # overall: mean normalised [.25 .15 .05 .075 .075 .05 .35]
    assert sens.select_parameters(xr.Dataset({"S1": da}), 0.85, by="all") == ["p0", "p1", "p3", "p4", "p6"]
    clusters = pd.Series([3, 3], index=["00000001", "00000002"])
    by_cluster = sens.select_parameters(da, 0.85, by="cluster", clusters=clusters, keyed_by="cluster")
    assert by_cluster == {3: ["p0", "p1", "p3", "p4", "p6"]}
    keyed = sens.select_parameters(da, 0.85, by="cluster", clusters=clusters)
    assert keyed == {"00000001": by_cluster[3], "00000002": by_cluster[3]}


def test_read_clusters_real_file(data_dir):
    cl = sens.read_clusters(data_dir)
    assert len(cl) == 671 and cl.nunique() == 15 and sorted(cl.unique()) == list(range(1, 16))
    assert all(len(b) == 8 for b in cl.index)
    assert cl["01013500"] == 9 and cl["14400000"] == 3
    assert cl.name == "cluster" and cl.index.name == "basin"


def test_read_clusters_malformed_and_missing(data_dir, tmp_path):
    src = (data_dir / sens.CLUSTERS_FILE).read_text().splitlines()
    bad = tmp_path / "data"
    f = bad / sens.CLUSTERS_FILE
    f.parent.mkdir(parents=True)
    f.write_text("\n".join([*src[:3], "01031500;9", *src[4:]]) + "\n")
    with pytest.raises(InputFormatError, match=r"flood_clusters_brunner2020\.txt, line 4") as e:
        sens.read_clusters(bad)
    assert e.value.line == 4 and e.value.path == str(f)
    f.write_text("\n".join([*src[:6], "01047000,nine"]) + "\n")
    with pytest.raises(InputFormatError, match="line 7: cluster must be an integer"):
        sens.read_clusters(bad)
    f.write_text("\n".join([*src[:6], src[2]]) + "\n")
    with pytest.raises(InputFormatError, match="line 7: gauge 01022500 is listed twice"):
        sens.read_clusters(bad)
    f.unlink()
    with pytest.raises(DataNotFoundError, match="flood_clusters_brunner2020.txt"):
        sens.read_clusters(bad)
    with pytest.raises(DataNotFoundError, match="ctsm_camels"):
        sens.read_clusters(tmp_path / "nowhere")


def test_aggregate_by_cluster_on_real_cluster_ids(data_dir):
    cl = sens.read_clusters(data_dir)
    basins = list(cl.index[::12])                    # 56 real gauges over the clusters
    rng = np.random.default_rng(0)
    s1 = rng.uniform(0, 0.05, (len(basins), D))
    for i, b in enumerate(basins):                   # the dominant parameter depends on the cluster
        s1[i, cl[b] % D] = 0.6
    s1[0, 1] = -0.1                                  # negative estimates are clipped
    da = xr.DataArray(s1, dims=("basin", "param"), coords={"basin": basins, "param": NAMES})
    agg = sens.aggregate_by_cluster(xr.Dataset({"S1": da}), cl)
    present = sorted(set(cl[basins]))
    assert list(agg["cluster"].values) == present
    assert int(agg["n_basins"].sum()) == len(basins)
    np.testing.assert_allclose(agg["S1_norm"].sum("param"), 1.0)
    assert (agg["S1_norm"].values >= 0).all()
    for c in present:
        assert int(agg["S1_norm"].sel(cluster=c).argmax("param")) == c % D
    # a basin without a cluster is left out, with a warning
    extra = xr.concat([da, da.isel(basin=[0]).assign_coords(basin=["99999999"])], "basin")
    with pytest.warns(RuntimeWarning, match="no cluster"):
        agg2 = sens.aggregate_by_cluster(extra, cl)
    assert int(agg2["n_basins"].sum()) == len(basins)


def test_write_round_trip_and_figures(tmp_path):
    f = Ishigami(6)
    ds = sens.sobol_on_emulator(f, np.arange(6), n_base=128, seed=0)
    out = sens.write_sensitivity(ds, tmp_path / "sens.zarr", call="test", inputs={"emulator": "abc"})
    back = sens.read_sensitivity(out).load()
    for v in ("S1", "ST", "S1_conf", "ST_conf", "y_mean", "y_std"):
        np.testing.assert_array_equal(back[v].values, ds[v].values)
    assert [str(b) for b in back["basin"].values] == f.basins
    assert [str(p) for p in back["param"].values] == NAMES
    assert back.attrs["lsegeo_store_kind"] == "sensitivity"
    assert back.attrs["lsegeo_n_base"] == 128 and back.attrs["lsegeo_step"] == "sensitivity"
    assert json.loads(back.attrs["lsegeo_config"])["lsegeo_n_base"] == 128
    assert (tmp_path / "sens.zarr.prov.json").exists()
    with pytest.raises(StoreError, match="already exists"):
        sens.write_sensitivity(ds, out)

    attrs = xr.Dataset(coords={"basin": f.basins, "lat": ("basin", np.linspace(30, 45, 6)),
                               "lon": ("basin", np.linspace(-120, -75, 6))})
    png = plot_sensitivity_map(ds, attrs, "p3", tmp_path / "map.png", index="ST")
    assert png.stat().st_size > 5000
    cl = pd.Series(np.arange(6) % 2 + 1, index=f.basins)
    agg = sens.aggregate_by_cluster(ds, cl)
    heat = plot_cluster_heatmap(agg, tmp_path / "heat.png")
    assert heat.stat().st_size > 5000
    sens.write_sensitivity(agg, tmp_path / "clusters.zarr")
    assert sens.read_sensitivity(tmp_path / "clusters.zarr").sizes == {"cluster": 2, "param": D}


def test_map_with_real_basin_coordinates(small_basins_store, tmp_path):
    from lsegeo.io.stores import open_store

    BASINS_STORE = small_basins_store
    basins = ["01022500", "01030500", "01118300"]
    ds = xr.Dataset({"S1": (("basin", "param"), np.array([[0.1, 0.5], [0.3, 0.2], [0.6, 0.0]]))},
                    coords={"basin": basins, "param": ["FC", "BETA"]})
    png = plot_sensitivity_map(ds, open_store(BASINS_STORE, "attributes"), "FC", tmp_path / "m.png")
    assert png.exists()
    lon, lat = basin_coords(open_store(BASINS_STORE, "attributes"), basins)
    assert np.isfinite(lon).all() and (lon < -60).all() and (lat > 25).all()


# --------------------------------------------------------------------------------------------
# `lsegeo sensitivity CONFIG` on a real calibration of the small basins
# --------------------------------------------------------------------------------------------

ALL_OBJECTIVES = ("kgeprime", "nkgeprime", "kge", "nse", "lognse", "mae", "rmse", "monthly_mean_maxabs")


def _sensitivity_config(basins_store, ensemble_store, cal_store, **calibrate) -> dict:
    from tests.conftest import small_job_config

    raw = small_job_config(basins_store, ensemble_store, n_members=100, objectives=ALL_OBJECTIVES)
    raw["calibrate"] = {"ensemble_store": str(ensemble_store), "store": str(cal_store), "iterations": 1,
                        "proposals": 5, "pop_size": 16, "generations": 8, "restarts": 2, "cv_folds": 0,
                        **calibrate}
    return raw


def _write_config(raw: dict, path) -> str:
    import yaml

    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.fixture(scope="module")
def lse_calibration(small_basins_store, small_ensemble_store, client, tmp_path_factory):
    """A real one-iteration LSE calibration of the 9 small basins (its iteration-1 emulator is saved)."""
    from lsegeo.config import validate_config
    from lsegeo.workflows.calibrate import calibrate_job

    tmp = tmp_path_factory.mktemp("sens_cal")
    raw = _sensitivity_config(small_basins_store, small_ensemble_store, tmp / "cal.zarr")
    cfg = validate_config(raw)
    calibrate_job(cfg, client=client, progress=False)
    return _write_config(raw, tmp / "cal.yaml"), cfg, raw


def _invoke(*args):
    from click.testing import CliRunner

    from lsegeo.cli import main

    return CliRunner().invoke(main, ["sensitivity", *map(str, args)])


def test_sensitivity_command_on_the_saved_lse(lse_calibration, small_ensemble_store, tmp_path):
    from lsegeo.io.stores import open_store
    from lsegeo.workflows.calibrate import calibration_paths

    config, cfg, _ = lse_calibration
    out, figs = tmp_path / "sens.zarr", tmp_path / "figs"
    res = _invoke(config, "--out", out, "--figures", figs, "--maps", 2, "--check", 4, "--share", 0.85,
                  "--n-base", 128)
    assert res.exit_code == 0, res.output
    assert "emulator: LSE of calibration iteration 1" in res.output

    ds = sens.read_sensitivity(out).load()
    basins = [str(b) for b in open_store(small_ensemble_store, "ensemble")["basin"].values]
    assert [str(b) for b in ds["basin"].values] == basins and len(basins) == 9
    assert [str(p) for p in ds["param"].values] == ["TT", "CFMAX", "SFCF", "CFR", "CWH", "FC", "LP", "BETA",
                                                     "PERC", "UZL", "K0", "K1", "K2", "MAXBAS"]
    s1, st = ds["S1"].values, ds["ST"].values
    assert s1.shape == st.shape == (9, 14) and np.isfinite(s1).all() and np.isfinite(st).all()
    assert (s1 > -0.1).all() and (s1 < 1.0).all() and (st >= 0).all() and (st < 1.5).all()
    assert (s1.sum(axis=1) > 0.3).all() and (s1.sum(axis=1) < 1.1).all()
    assert (st >= s1 - 3 * ds["S1_conf"].values - 0.02).all()       # ST >= S1 up to sampling error
    assert (s1.max(axis=1) > 0.1).all() and (ds["y_std"].values > 0).all()
    # provenance: the emulator's files, the seed of the calibration's own screening, the command
    emulator_dir = calibration_paths(cfg).emulator(1)
    assert ds.attrs["lsegeo_emulator_iteration"] == 1 and ds.attrs["lsegeo_emulator_dir"] == str(emulator_dir)
    assert ds.attrs["lsegeo_seed"] == cfg.calibrate.seed + 1 and ds.attrs["lsegeo_n_base"] == 128
    assert ds.attrs["lsegeo_target"] == "nkgeprime" and ds.attrs["lsegeo_n_inputs"] >= 3
    assert " sensitivity: lsegeo " in ds.attrs["history"].splitlines()[0]   # the command line (sys.argv)
    prov = json.loads((tmp_path / "sens.zarr.prov.json").read_text())
    assert str(emulator_dir / "emulator.json") in json.dumps(prov)

    pngs = sorted(p.name for p in figs.iterdir())
    assert "sensitivity_clusters.png" in pngs and len(pngs) == 3
    assert all((figs / p).stat().st_size > 5000 for p in pngs)

    assert "agreement over 4 basins (14 parameters): median Spearman" in res.output
    assert sum(line.startswith("  0") for line in res.output.splitlines()) == 4   # one line per checked basin
    assert "parameters carrying 85% of the summed S1, per cluster" in res.output
    assert "kept on average" in res.output and " of 14 parameters per basin" in res.output

    again = _invoke(config, "--out", out, "--n-base", 128)
    assert again.exit_code == 2 and "already exists" in again.output and "--overwrite" in again.output


def test_sensitivity_command_errors_are_clear(lse_calibration, tmp_path):
    config, _, raw = lse_calibration
    res = _invoke(config, "--iteration", 3, "--out", tmp_path / "x.zarr")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "iteration 3" in res.output and "iteration_3 holds no completed emulator" in res.output
    assert "the completed iterations there are 1" in res.output

    sse = _write_config({**raw, "calibrate": {**raw["calibrate"], "emulator": "sse"}}, tmp_path / "sse.yaml")
    res = _invoke(sse, "--out", tmp_path / "y.zarr")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "calibrate.emulator is 'sse'" in res.output and "large-sample emulator" in res.output

    res = _invoke(config, "--out", tmp_path / "z.zarr", "--target", "nse")
    assert res.exit_code == 2 and "target 'nse' is not a target of the emulator" in res.output
    res = _invoke(config, "--n-base", 100)
    assert res.exit_code == 2 and "must be a power of 2" in res.output
    assert not any((tmp_path / n).exists() for n in ("x.zarr", "y.zarr", "z.zarr"))


def test_sensitivity_command_fits_an_lse_on_iteration0_when_none_is_saved(
        lse_calibration, small_basins_store, small_ensemble_store, tmp_path):
    """No saved emulator: an LSE is fitted on iteration 0 as calibration iteration 1 fits it, so the
    indices are those of the saved iteration-1 emulator of the same configuration."""
    config, _, _ = lse_calibration
    fresh = _write_config(_sensitivity_config(small_basins_store, small_ensemble_store, tmp_path / "none.zarr"),
                          tmp_path / "fresh.yaml")
    res = _invoke(fresh, "--out", tmp_path / "fresh.zarr", "--n-base", 64)
    assert res.exit_code == 0, res.output
    assert "has no saved LSE; fitting one on the iteration-0 ensemble" in res.output
    assert not (tmp_path / "none.zarr.emulators").exists()            # nothing saved in the calibration's place
    res = _invoke(config, "--out", tmp_path / "saved.zarr", "--n-base", 64)
    assert res.exit_code == 0, res.output
    a = sens.read_sensitivity(tmp_path / "fresh.zarr").load()
    b = sens.read_sensitivity(tmp_path / "saved.zarr").load()
    assert a.attrs["lsegeo_emulator_iteration"] == 1 and a.attrs["lsegeo_emulator_dir"] == ""
    assert a.sizes == {"basin": 9, "param": 14}
    np.testing.assert_allclose(a["S1"].values, b["S1"].values, atol=1e-6)
    np.testing.assert_allclose(a["ST"].values, b["ST"].values, atol=1e-6)
