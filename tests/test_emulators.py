"""Emulators on the real stores: features, LSE backends, SSE, saving without pickle, CV skill.

Uses the session stores of ``medium_stores`` (tests/conftest.py): 60 real CAMELS basins with
streamflow and one withheld gauge, ingested from the real data, and iteration 0 of 100 HBV members
over the 60.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lsegeo import emulators as E
from lsegeo.emulators.protocol import Emulator
from lsegeo.emulators.registry import BACKENDS
from lsegeo.errors import UnknownBasinError
from lsegeo.io.stores import open_store
from lsegeo.registry import Registry
from tests.conftest import MEDIUM_WITHHELD as WITHHELD  # attributes and forcing, no streamflow

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pk", ".dill"}
FAST = {"xgboost": {"n_estimators": 300}, "random_forest": {"n_estimators": 40},
        "torch_mlp": {"hidden": [64, 64], "max_epochs": 40, "patience": 5}}


@pytest.fixture(scope="module")
def basins_store(medium_stores):
    return medium_stores[0]


@pytest.fixture(scope="module")
def ensemble_store(medium_stores):
    return medium_stores[1]


@pytest.fixture(scope="module")
def attrs(basins_store):
    return open_store(basins_store, "attributes")


@pytest.fixture(scope="module")
def ens(ensemble_store):
    return open_store(ensemble_store, "ensemble")


@pytest.fixture(scope="module")
def ts(ens, ensemble_store, basins_store):
    """The 60 basins plus a withheld gauge, nkgeprime on calibration."""
    basins = [str(b) for b in ens.basin.values] + [WITHHELD]
    return E.training_set(ensemble_store, basins_store, objectives=("nkgeprime",), basins=basins)


@pytest.fixture(scope="module")
def holdout(ts):
    """Rows of training basins split by member: every 5th member held out."""
    test = ts.member % 5 == 0
    return ts.subset(np.flatnonzero(~test)), ts.subset(np.flatnonzero(test))


def _assert_no_pickle(directory: Path) -> None:
    files = [f for f in Path(directory).rglob("*") if f.is_file()]
    assert files
    for f in files:
        assert f.suffix not in PICKLE_SUFFIXES, f
        if f.suffix == ".npz":
            with np.load(f, allow_pickle=False) as z:
                for k in z.files:
                    assert z[k].dtype.kind != "O"
        elif f.suffix == ".json":
            json.loads(f.read_text())
        elif f.suffix == ".pt":  # torch state_dict: must load with the safe unpickler
            torch = pytest.importorskip("torch")
            torch.load(f, weights_only=True)
        else:
            assert f.read_bytes()[:1] != b"\x80", f"{f} looks like a pickle"


def _per_basin_corr(basin_index, y, p):
    return np.array([np.corrcoef(p[basin_index == b], y[basin_index == b])[0, 1] for b in np.unique(basin_index)])


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------


def test_study_attributes_are_the_27_of_the_paper():
    assert len(E.STUDY_ATTRIBUTES) == 27 == len(set(E.STUDY_ATTRIBUTES))
    assert "area_gages2" in E.STUDY_ATTRIBUTES and "dom_land_cover" in E.STUDY_ATTRIBUTES


def test_training_set_rows_params_and_attributes(ts, ens, attrs):
    assert ts.basins[-1] == WITHHELD and len(ts.basins) == 61
    # the withheld gauge has an attribute row but no training rows
    assert WITHHELD not in [ts.basins[i] for i in ts.basins_with_rows]
    assert len(ts.basins_with_rows) == 60
    status = ens["status"].sel(basin=ts.basins[:60]).values
    score = ens["scores"].sel(basin=ts.basins[:60], period="calibration", objective="nkgeprime").values
    assert len(ts) == int(((status == 1) & np.isfinite(score)).sum())
    b, m = ts.basin_index[123], ts.member[123]
    assert ts.target[123, 0] == score[b, m]
    # unit cube through the store's parameter space; member 0 is the default
    space = E.space_from_store(ens)
    assert space.names == ts.param_names == [str(p) for p in ens.param.values]
    assert [p.scale for p in space.parameters] == [str(s) for s in ens.param_scale.values]
    assert ts.params_unit.min() >= 0 and ts.params_unit.max() <= 1
    row0 = np.flatnonzero(ts.member == 0)[0]
    np.testing.assert_allclose(ts.params_unit[row0], space.to_unit(space.default), atol=1e-12)
    x = ens["params"].sel(basin=ts.basins[b]).values[m]
    np.testing.assert_allclose(space.from_unit(ts.params_unit[123]), x, rtol=1e-12)
    # attributes: numeric as they are, dom_land_cover one-hot
    names = ts.attribute_names
    assert names[:3] == ["elev_mean", "slope_mean", "area_gages2"]
    np.testing.assert_array_equal(ts.attributes[:, 2], attrs["area"].sel(basin=ts.basins).values)
    onehot = [i for i, n in enumerate(names) if n.startswith("dom_land_cover=")]
    classes = {str(c) for c in attrs["dom_land_cover"].sel(basin=ts.basins[:60]).values}
    assert len(onehot) == len(classes) >= 3
    np.testing.assert_array_equal(ts.attributes[:, onehot].sum(axis=1), 1.0)
    assert not any(n.endswith("_missing") for n in names)  # none of the 27 has missing values
    assert ts.attributes.shape == (61, 26 + len(classes)) and ts.attributes.dtype == np.float64


def test_missing_values_median_and_indicator_only_where_missing(attrs):
    names = ["p_mean", "root_depth_50", "geol_2nd_class"]
    mat, enc = E.encode_attributes(attrs, names)
    cols = enc.feature_names
    assert "p_mean_missing" not in cols
    assert "root_depth_50_missing" in cols and "geol_2nd_class_missing" in cols
    raw = attrs["root_depth_50"].values
    miss = np.isnan(raw)
    assert miss.sum() > 0
    j = cols.index("root_depth_50")
    np.testing.assert_array_equal(mat[miss, j], np.median(raw[~miss]))
    np.testing.assert_array_equal(mat[~miss, j], raw[~miss])
    np.testing.assert_array_equal(mat[:, cols.index("root_depth_50_missing")], miss.astype(float))
    empty = attrs["geol_2nd_class"].values == ""
    geo = [i for i, c in enumerate(cols) if c.startswith("geol_2nd_class=")]
    assert "geol_2nd_class=" not in cols  # "" is missing, not a class
    np.testing.assert_array_equal(mat[empty][:, geo], 0.0)
    np.testing.assert_array_equal(mat[:, cols.index("geol_2nd_class_missing")], empty.astype(float))
    assert not np.isnan(mat).any()


def test_unseen_basins_get_the_same_encoding(attrs):
    names = ["root_depth_50", "dom_land_cover", "aridity"]
    complete = attrs.isel(basin=np.flatnonzero(~np.isnan(attrs["root_depth_50"].values))[:300])
    _, enc = E.encode_attributes(complete, names)
    assert "root_depth_50_missing" not in enc.feature_names  # fitted on basins without gaps
    enc2 = E.AttributeEncoder.from_json(enc.to_json())  # what an emulator stores
    assert enc2 == enc
    mat, same = E.encode_attributes(attrs, names, encoder=enc2)
    assert same is enc2 and mat.shape == (attrs.sizes["basin"], len(enc.feature_names))
    miss = np.isnan(attrs["root_depth_50"].values)
    np.testing.assert_array_equal(mat[miss, 0], enc.numeric["root_depth_50"]["fill"])
    # a row encodes the same alone as in a batch; an unknown class is all zeros
    one, _ = E.encode_attributes(attrs.isel(basin=[5]), names, encoder=enc)
    np.testing.assert_array_equal(one[0], mat[5])
    fake = {"root_depth_50": np.array([0.2]), "dom_land_cover": np.array(["Tundra"]), "aridity": np.array([1.0])}
    row, _ = E.encode_attributes(fake, names, encoder=enc)
    onehot = [i for i, c in enumerate(enc.feature_names) if c.startswith("dom_land_cover=")]
    np.testing.assert_array_equal(row[0, onehot], 0.0)
    # ... and is reported, by attribute, class and rows
    fake2 = {**{k: np.repeat(v, 3) for k, v in fake.items()}, "dom_land_cover": np.array(["Tundra", "", "Tundra"])}
    assert enc.unseen_classes(fake2) == {"dom_land_cover": {"Tundra": 2}}
    assert enc.unseen_classes(complete) == {}  # the basins it was fitted on


def test_unknown_attribute_names_raise_keyerror_naming_them(attrs, ensemble_store, basins_store):
    with pytest.raises(KeyError, match=r"not_an_attribute.*nor_this"):
        E.encode_attributes(attrs, ["p_mean", "not_an_attribute", "nor_this"])
    with pytest.raises(KeyError, match="bogus"):
        E.training_set(ensemble_store, basins_store, attributes=["p_mean", "bogus"], basins=["01022500"])
    with pytest.raises(KeyError, match="no_such_objective"):
        E.training_set(ensemble_store, basins_store, objectives=["no_such_objective"], basins=["01022500"])
    with pytest.raises(UnknownBasinError):
        E.training_set(ensemble_store, basins_store, basins=["99999999"])


# ---------------------------------------------------------------------------------------------
# large-sample emulator
# ---------------------------------------------------------------------------------------------


def test_backend_registry():
    assert isinstance(BACKENDS, Registry) and {"xgboost", "random_forest", "torch_mlp"} <= set(BACKENDS)
    with pytest.raises(KeyError, match="no_such_backend"):
        E.LargeSampleEmulator("no_such_backend")


@pytest.mark.parametrize("backend", ["xgboost", "random_forest", "torch_mlp"])
def test_lse_backend_fit_predict_save_load(backend, ts, holdout, tmp_path):
    if backend == "torch_mlp":
        pytest.importorskip("torch")
    train, test = holdout
    em = E.LargeSampleEmulator(backend, seed=3, n_jobs=1, **FAST[backend]).fit(train)
    assert isinstance(em, Emulator) and em.kind == "lse"
    assert em.basins == ts.basins and em.param_names == ts.param_names and em.target_names == ["nkgeprime"]
    assert em.skill["training_rows"] == len(train) and em.skill["backend"] == backend
    p = em.predict(test.basin_index, test.params_unit)
    assert p.shape == (len(test), 1) and np.isfinite(p).all()
    overall = np.corrcoef(p[:, 0], test.target[:, 0])[0, 1]
    per_basin = np.median(_per_basin_corr(test.basin_index, test.target[:, 0], p[:, 0]))
    assert overall > 0.5 and per_basin > 0.5, (overall, per_basin)
    # the withheld gauge (no rows) is predicted from its attributes
    w = ts.basins.index(WITHHELD)
    pw = em.predict(np.full(3, w), test.params_unit[:3])
    np.testing.assert_array_equal(pw, em.predict_features(ts.attributes[w], test.params_unit[:3]))
    # save / load: identical predictions, no pickle anywhere
    em.save(tmp_path / "em")
    (tmp_path / "em" / "COMPLETE").write_text("{}")  # foreign files beside are ignored
    _assert_no_pickle(tmp_path / "em")
    back = E.load(tmp_path / "em")
    assert type(back) is E.LargeSampleEmulator and back.basins == em.basins
    np.testing.assert_array_equal(back.predict(test.basin_index, test.params_unit), p)
    blob = em.to_bytes()
    assert isinstance(blob, bytes) and zipfile.is_zipfile(__import__("io").BytesIO(blob))
    np.testing.assert_array_equal(E.load_bytes(blob).predict(test.basin_index, test.params_unit), p)
    assert back.encoder == ts.encoder and back.space == ts.space


def test_lse_xgboost_default_skill_on_held_out_members(holdout):
    train, test = holdout
    em = E.LargeSampleEmulator(seed=0, n_jobs=1).fit(train)
    p = em.predict(test.basin_index, test.params_unit)[:, 0]
    assert np.corrcoef(p, test.target[:, 0])[0, 1] > 0.8
    assert np.median(_per_basin_corr(test.basin_index, test.target[:, 0], p)) > 0.7


def test_lse_predict_features_on_encoded_new_basins(ts, holdout, attrs):
    train, test = holdout
    em = E.LargeSampleEmulator(seed=0, n_jobs=1, n_estimators=50).fit(train)
    new = attrs.sel(basin=[WITHHELD, ts.basins[4]])
    rows = em.encode(new)
    np.testing.assert_array_equal(rows, ts.attributes[[len(ts.basins) - 1, 4]])
    u = test.params_unit[:2]
    np.testing.assert_array_equal(em.predict_features(rows, u), em.predict(np.array([len(ts.basins) - 1, 4]), u))
    with pytest.raises(IndexError):
        em.predict(np.array([len(ts.basins)]), u[:1])
    with pytest.raises(ValueError):
        em.predict(np.array([0]), u[:1, :5])


def test_lse_two_targets(ens, ensemble_store, basins_store):
    basins = [str(b) for b in ens.basin.values[:6]]
    ts2 = E.training_set(ensemble_store, basins_store, objectives=("nkgeprime", "mae"), basins=basins)
    assert ts2.target.shape[1] == 2 and ts2.target_senses == ["max", "min"]
    em = E.LargeSampleEmulator(seed=0, n_estimators=30).fit(ts2)
    assert em.predict(ts2.basin_index[:4], ts2.params_unit[:4]).shape == (4, 2)


# ---------------------------------------------------------------------------------------------
# single-site emulator
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sse_ts(ts):
    return ts.select_basins(ts.basins[:6] + [WITHHELD])


def test_sse_choice_per_basin_and_exact_gp_round_trip(sse_ts, tmp_path):
    em = E.SingleSiteEmulator(seed=5).fit(sse_ts)
    assert isinstance(em, Emulator) and em.kind == "sse"
    assert em.basins == sse_ts.basins[:6]  # the withheld gauge has no rows, hence no surrogate
    assert em.skill["basins_without_rows"] == [WITHHELD]
    assert em.choice.shape == (6, 1) and set(em.choice.ravel()) <= {"gp", "rf"}
    assert em.cv_rmse.shape == (6, 1, 2) and np.isfinite(em.cv_rmse).all()
    np.testing.assert_array_equal(em.choice[:, 0], np.where(em.cv_rmse[:, 0, 0] <= em.cv_rmse[:, 0, 1], "gp", "rf"))
    table = em.selection_table()
    assert list(table.columns) == ["basin", "target", "choice", "cv_rmse_gp", "cv_rmse_rf"] and len(table) == 6
    assert sum(em.skill["chosen"]["nkgeprime"].values()) == 6
    rows = sse_ts.basin_index < 6
    idx, u = sse_ts.basin_index[rows], sse_ts.params_unit[rows]
    p = em.predict(idx, u)
    assert np.corrcoef(p[:, 0], sse_ts.target[rows, 0])[0, 1] > 0.9  # in-sample
    em.save(tmp_path / "sse")
    _assert_no_pickle(tmp_path / "sse")
    np.testing.assert_array_equal(E.load(tmp_path / "sse").predict(idx, u), p)
    np.testing.assert_array_equal(E.load_bytes(em.to_bytes()).predict(idx, u), p)
    # a GP rebuilt from the stored hyperparameters alone predicts exactly like the fitted one
    # (with one BLAS thread, as the emulator computes: thread counts change the last bits)
    from lsegeo.emulators.surrogates import rebuild_gp
    from lsegeo.runtime import one_blas_thread

    i = int(np.flatnonzero(em.choice[:, 0] == "gp")[0])
    a = em._arrays
    X, Y = a["X"][a["offsets"][i]:a["offsets"][i + 1]], a["Y"][a["offsets"][i]:a["offsets"][i + 1], 0]
    mean, std = a["y_mean"][i, 0], a["y_std"][i, 0]
    with one_blas_thread():
        gp = rebuild_gp(X, (Y - mean) / std, a["gp_theta"][i, 0], em.settings["gp_alpha"])
        np.testing.assert_array_equal(gp.predict(u[idx == i]) * std + mean, p[idx == i, 0])
    with pytest.raises(NotImplementedError):
        em.predict_features(np.zeros((1, 3)), u[:1])


def test_sse_random_forest_round_trip_and_dask_fit_equals_serial(sse_ts, client):
    small = sse_ts.select_basins(sse_ts.basins[:3])
    serial = E.SingleSiteEmulator(seed=2, candidates=["rf", "gp"]).fit(small)
    forced = E.SingleSiteEmulator(seed=2, candidates=["rf"]).fit(small)
    assert set(forced.choice.ravel()) == {"rf"}
    idx, u = small.basin_index, small.params_unit
    np.testing.assert_array_equal(E.load_bytes(forced.to_bytes()).predict(idx, u), forced.predict(idx, u))
    on_dask = E.SingleSiteEmulator(seed=2, candidates=["rf", "gp"]).fit(small, client=client)
    np.testing.assert_array_equal(on_dask.choice, serial.choice)
    np.testing.assert_allclose(on_dask.predict(idx, u), serial.predict(idx, u), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# cross-validated skill
# ---------------------------------------------------------------------------------------------


def test_grouped_folds_never_share_a_basin(ts):
    folds = E.grouped_folds(ts, n_folds=5, seed=1)
    assert len(folds) == 5
    seen = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(seen), np.arange(len(ts)))  # every row tested once
    for train, test in folds:
        assert not set(ts.basin_index[train]) & set(ts.basin_index[test])
        assert len(np.unique(ts.basin_index[test])) == 12


def test_within_basin_folds_split_each_basins_members(ts):
    folds = E.within_basin_folds(ts, n_folds=5, seed=1)
    seen = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(seen), np.arange(len(ts)))
    every = set(np.unique(ts.basin_index))
    for train, test in folds:
        assert set(ts.basin_index[train]) == every == set(ts.basin_index[test])
        counts = np.bincount(ts.basin_index[test], minlength=len(ts.basins))[list(every)]
        n_members = np.bincount(ts.basin_index)[list(every)]  # each basin split evenly over the folds
        assert (counts >= n_members // 5).all() and (counts <= -(-n_members // 5)).all()


def test_cross_validate_lse_grouped_skill_fields(ts):
    skill = E.cross_validate(lambda: E.LargeSampleEmulator(seed=0, n_estimators=100), ts, n_folds=3, seed=4)
    assert skill["cv_scheme"] == "grouped" and skill["cv_folds"] == 3 and skill["cv_basins"] == 60
    m = skill["cv_targets"]["nkgeprime"]
    for key in ("median_corr", "mean_corr", "median_rmse", "share_corr_below_0.5", "overall_corr", "overall_rmse",
                "n_basins"):
        assert key in m
    assert m["n_basins"] == 60 and 0 <= m["share_corr_below_0.5"] <= 1
    assert m["median_corr"] > 0.5 and m["overall_corr"] > 0.3
    json.dumps(skill)
    text = E.format_skill(skill)
    assert "grouped by basin" in text and "nkgeprime" in text and "median r" in text


def test_cross_validate_sse_within_basin(sse_ts):
    small = sse_ts.select_basins(sse_ts.basins[:3])
    skill = E.cross_validate(lambda: E.SingleSiteEmulator(seed=0, n_folds=3, gp_cv="fixed"), small, n_folds=3, seed=0)
    assert skill["cv_scheme"] == "within_basin" and skill["cv_basins"] == 3
    assert skill["cv_targets"]["nkgeprime"]["median_corr"] > 0.7
    em = E.SingleSiteEmulator(seed=0, n_folds=3, gp_cv="fixed").fit(small)
    em.skill.update(skill)
    assert "surrogate chosen per basin" in em.describe() and "within each basin" in em.describe()


# ---------------------------------------------------------------------------------------------
# registries, settings, layout, runtime
# ---------------------------------------------------------------------------------------------


def test_registries_resolve_lazily_and_register_backend_keeps_its_rules():
    from lsegeo.emulators.registry import EMULATORS, FOLD_SCHEMES, SSE_CANDIDATES, make_backend, register_backend
    from lsegeo.errors import UnknownNameError

    assert EMULATORS.names() == ["lse", "sse"] and EMULATORS.get("lse") is E.LargeSampleEmulator
    assert EMULATORS.get("sse") is E.SingleSiteEmulator
    assert SSE_CANDIDATES.names() == ["gp", "rf"] and FOLD_SCHEMES.get("grouped") is E.grouped_folds
    with pytest.raises(UnknownNameError, match="no_such_backend.*random_forest, torch_mlp, xgboost"):
        make_backend("no_such_backend", seed=0, n_jobs=1)
    with pytest.raises(ValueError, match="already registered"):
        register_backend("xgboost", lambda **kw: None)
    made = []
    register_backend("test_echo", lambda **kw: made.append(kw) or kw)
    try:
        assert make_backend("test_echo", seed=3, n_jobs=2, depth=4) == {"seed": 3, "n_jobs": 2, "depth": 4}
        E.LargeSampleEmulator("test_echo")  # a registered name is accepted
    finally:
        BACKENDS._entries.pop("test_echo")
    with pytest.raises(KeyError, match="unknown CV scheme 'nope'"):
        E.cross_validate(lambda: E.LargeSampleEmulator(n_estimators=5), None, scheme="nope")


def test_settings_own_the_defaults_and_build_the_emulator():
    from lsegeo.config import CalibrateConfig, validate_config
    from lsegeo.emulators.settings import EmulatorSettings
    from lsegeo.errors import ConfigError, UnknownNameError

    s = EmulatorSettings()
    assert (s.kind, s.backend, s.cv_folds, s.cv_scheme, s.scheme) == ("lse", "xgboost", 0, None, "grouped")
    cc = CalibrateConfig()
    assert (cc.emulator, cc.backend, cc.cv_folds) == (s.kind, s.backend, s.cv_folds)
    with pytest.raises(ConfigError, match="calibrate.backend: unknown emulator backend 'boosted'"):
        validate_config({"calibrate": {"backend": "boosted"}})
    with pytest.raises(UnknownNameError):
        EmulatorSettings(kind="gan")
    with pytest.raises(ValueError, match="cv_folds"):
        EmulatorSettings(cv_folds=1)
    with pytest.raises(TypeError):  # the options are read-only
        s.backend_options["n_estimators"] = 3
    lse = E.create_emulator(EmulatorSettings(backend="random_forest", backend_options={"n_estimators": 7},
                                             seed=4, threads=2))
    assert type(lse) is E.LargeSampleEmulator and (lse.backend, lse.seed, lse.n_jobs) == ("random_forest", 4, 2)
    assert lse.options == {"n_estimators": 7}
    sse = E.create_emulator(EmulatorSettings(kind="sse", backend_options={"candidates": ["rf"]}).with_seed(9))
    assert type(sse) is E.SingleSiteEmulator and sse.seed == 9 and sse.settings["candidates"] == ["rf"]
    assert EmulatorSettings(kind="sse").scheme == "within_basin"


def test_parameter_space_dict_round_trip():
    from lsegeo.design import Parameter, ParameterSpace

    space = ParameterSpace((Parameter("FC", 50.0, 500.0, 250.0, "log", "mm"), Parameter("BETA", 1.0, 6.0, 2.0)),
                           name="hbv")
    d = json.loads(json.dumps(space.to_dict()))  # what an emulator's emulator.json holds
    assert ParameterSpace.from_dict(d) == space


def test_emulators_import_one_way_and_settings_load_nothing_heavy():
    import ast
    import subprocess
    import sys

    root = Path(E.__file__).parent
    edges = {}
    for f in root.rglob("*.py"):
        mod = "lsegeo." + ".".join(f.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(f.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lsegeo.emulators"):
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names if a.name.startswith("lsegeo.emulators")}
        edges[mod] = names
    for mod, deps in edges.items():  # no module below the package imports its __init__
        if mod != "lsegeo.emulators":
            assert "lsegeo.emulators" not in deps, mod

    def reach(start, seen):
        for d in edges.get(start, ()):
            if d not in seen:
                seen.add(d)
                reach(d, seen)
        return seen

    for mod in edges:
        assert mod not in reach(mod, set()), f"import cycle through {mod}"
    code = ("import sys, lsegeo.emulators.settings, lsegeo.emulators.registry; "
            "print(sorted(m for m in ('xarray', 'xgboost', 'sklearn', 'torch', 'lsegeo.emulators.lse') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_runtime_threads_and_logging(caplog):
    import logging

    from lsegeo import runtime

    assert runtime.available_cores() >= 1
    assert runtime.worker_thread_share(4, cores=16) == 4 and runtime.worker_thread_share(32, cores=16) == 1
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy  # noqa: F401 - BLAS loaded

    with runtime.limit_threads(1):
        assert all(p["num_threads"] == 1 for p in threadpoolctl.threadpool_info())
    with runtime.one_blas_thread():
        assert all(p["num_threads"] == 1 for p in threadpoolctl.threadpool_info())
    log = logging.getLogger("lsegeo")
    earlier = list(log.handlers)  # e.g. left by a CLI test in this process: set aside, put back after
    for h in earlier:
        log.removeHandler(h)
    before: list = []
    try:
        runtime.configure_logging(logging.DEBUG)
        runtime.configure_logging("info")
        mine = [h for h in log.handlers if h not in before]
        assert len(mine) == 1 and mine[0].level == logging.INFO and log.level == logging.INFO
        with caplog.at_level(logging.INFO, logger="lsegeo"):
            logging.getLogger("lsegeo.emulators.test").info("hello")
        assert "hello" in caplog.text
        with pytest.raises(ValueError, match="unknown logging level"):
            runtime.configure_logging("chatty")
    finally:
        for h in log.handlers[:]:
            if h not in before:
                log.removeHandler(h)
        for h in earlier:
            log.addHandler(h)
        log.setLevel(logging.NOTSET)
    with runtime.roomy_malloc():  # a no-op without MALLOC_TRIM_THRESHOLD_, a heap tweak with it
        pass
