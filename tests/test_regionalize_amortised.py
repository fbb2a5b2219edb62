"""Amortised regionalization (lsegeo.regionalize.amortised) on a synthetic problem with a known optimum.

The truth is a :class:`~lsegeo.testing.QuadraticBowl`: for attribute row ``a`` the score of ``u``
is ``1 - sum_j w_j (u_j - c_j(a))^2``, its optimum ``c(a)`` a known function of the attributes. A
small ensemble of ``torch_mlp`` LSEs learns it from random samples of 100 training basins; the
network trained through them is judged on 60 held-out basins by the true score of what it
proposes.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from lsegeo.design import Parameter, ParameterSpace
from lsegeo.emulators.features import AttributeEncoder, TrainingSet
from lsegeo.emulators.lse import LargeSampleEmulator
from lsegeo.errors import ConfigError
from lsegeo.optimise.proposals import propose
from lsegeo.regionalize.amortised import AmortisedRegionalizer, ensemble_scores
from lsegeo.testing import QuadraticBowl

pytest.importorskip("torch")  # the torch extra

N_ATTR, D = 5, 4
TRAIN, TEST = np.arange(100), np.arange(100, 160)


@pytest.fixture(scope="module")
def problem():
    """Encoded attribute rows of 160 basins, the bowl, and a training set of 100 basins x 25 random sets."""
    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(N_ATTR)]
    raw = pd.DataFrame(rng.normal(size=(160, N_ATTR)), columns=names)
    raw["cls"] = rng.choice(np.array(["forest", "grass"], dtype=object), 160)  # a one-hot pair of columns
    enc = AttributeEncoder.fit(raw, [*names, "cls"])
    a = enc.transform(raw)
    params = [f"p{i}" for i in range(D)]
    bowl = QuadraticBowl(a, params, seed=3, centre_range=(0.1, 0.9))
    b = np.repeat(TRAIN, 25)
    u = rng.random((len(b), D))
    space = ParameterSpace(tuple(Parameter(p, 0.0, 1.0, 0.5) for p in params))
    ts = TrainingSet(basins=[str(i) for i in range(160)], attribute_names=enc.feature_names, attributes=a,
                     param_names=params, basin_index=b, params_unit=u, target=bowl.predict_features(a[b], u),
                     target_names=["nkgeprime"], member=np.tile(np.arange(25), len(TRAIN)), encoder=enc, space=space,
                     target_senses=["max"])
    return a, bowl, ts


@pytest.fixture(scope="module")
def emulators(problem):
    _, _, ts = problem
    return [LargeSampleEmulator("torch_mlp", seed=s, hidden=[32, 32], max_epochs=40, patience=6, batch_size=256).fit(ts)
            for s in range(3)]


@pytest.fixture(scope="module")
def fitted(emulators, problem):
    a = problem[0]
    net = AmortisedRegionalizer(epochs=120, patience=20, batch_size=256, warm_start=128, warm_epochs=150)
    return net.fit(emulators, a[TRAIN])


def _true(bowl, a, u):
    return bowl.predict_features(a, u)[:, 0]


def test_differentiable_backend_is_the_frozen_prediction(emulators, problem):
    import torch

    a = problem[0]
    em = emulators[0]
    f = em.model.differentiable()
    u = np.random.default_rng(1).random((7, D))
    x = torch.tensor(np.hstack([u, a[:7]]), dtype=torch.float32, requires_grad=True)
    before = [None if p.grad is None else p.grad.clone() for p in em.model.net.parameters()]
    y = f(x)
    np.testing.assert_allclose(y.detach().numpy()[:, 0], em.predict_features(a[:7], u)[:, 0], rtol=1e-5, atol=1e-5)
    assert not any(p.requires_grad for p in f.parameters())
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and float(x.grad[:, :D].abs().sum()) > 0
    for p, g in zip(em.model.net.parameters(), before, strict=True):  # the backend's own network is untouched
        assert p.requires_grad and (p.grad is None if g is None else torch.equal(p.grad, g))


def test_amortised_reaches_the_optimum_on_held_out_basins(fitted, emulators, problem):
    a, bowl, _ = problem
    u = fitted.predict(a[TEST])
    assert u.shape == (len(TEST), D) and np.all((u >= 0) & (u <= 1))
    score = _true(bowl, a[TEST], u)
    # the best single set for every basin: the mean of the training basins' optima (the bowl is separable)
    const = np.tile(bowl.centres_of(a[TRAIN]).mean(axis=0), (len(TEST), 1))
    score_const = _true(bowl, a[TEST], const)
    assert np.median(score) > 0.98  # the analytic optimum is 1 everywhere
    assert np.median(score) - np.median(score_const) > 0.05
    assert (score > score_const).mean() > 0.9
    # GA on the same (first) emulator for the same basins: the study's per-target optimisation
    t0 = time.perf_counter()
    ga = propose(lambda b, uu: emulators[0].predict_features(a[TEST][b], uu), np.arange(len(TEST)), D, ["max"], 1,
                 pop_size=50, n_gen=40, n_restarts=1, seed=0, local_share=0.0)
    t_ga = (time.perf_counter() - t0) / len(TEST)
    t0 = time.perf_counter()
    fitted.predict(a[TEST])
    t_am = (time.perf_counter() - t0) / len(TEST)
    score_ga = _true(bowl, a[TEST], ga.u[:, 0])
    assert np.median(score) >= np.median(score_ga) - 0.01
    print(f"\nper target: amortised {t_am:.2e} s, GA {t_ga:.2e} s ({t_ga / t_am:.0f}x); median true score "
          f"amortised {np.median(score):.4f}, GA {np.median(score_ga):.4f}, constant {np.median(score_const):.4f}; "
          f"fit {fitted.history['seconds']:.1f} s, {fitted.history['epochs']} epochs")
    h = fitted.history
    assert h["n_members"] == 3 and h["n_validation"] == 15 and h["n_train"] == 85
    assert len(h["val_loss"]) == h["epochs"] and 1 <= h["best_epoch"] <= h["epochs"]
    assert h["val_loss"][h["best_epoch"] - 1] <= min(h["val_loss"]) + fitted.options["min_delta"]
    mean, spread = ensemble_scores(emulators, a[TEST], u)
    assert mean.shape == spread.shape == (len(TEST),) and np.all(spread >= 0)


def test_save_load_round_trip(fitted, problem, tmp_path):
    a = problem[0]
    back = AmortisedRegionalizer.load(fitted.save(tmp_path / "net"))
    np.testing.assert_array_equal(back.predict(a), fitted.predict(a))
    assert back.target == "nkgeprime" and back.sense == "max" and back.history["epochs"] == fitted.history["epochs"]
    assert not list(tmp_path.glob("net/*.pkl"))
    with pytest.raises(ValueError, match=r"attr_rows must be \(n, 7\)"):
        back.predict(a[:, :3])


def test_fixed_parameters_and_bad_input(emulators, problem):
    a = problem[0]
    mask = np.array([False, True, False, True])
    r = AmortisedRegionalizer(epochs=3, warm_start=16, warm_epochs=2).fit(
        emulators[:2], a[TRAIN], fixed_mask=mask, fixed_values=np.array([0.0, 0.25, 0.0, 0.9]))
    u = r.predict(a[TEST])
    assert np.all(u[:, 1] == 0.25) and np.all(u[:, 3] == pytest.approx(0.9))
    assert u[:, 0].std() > 0
    with pytest.raises(ConfigError, match="unit cube"):
        AmortisedRegionalizer().fit(emulators, a[TRAIN], fixed_mask=mask, fixed_values=np.array([0, 1.5, 0, 0]))
    with pytest.raises(ConfigError, match="no target 'kge'"):
        AmortisedRegionalizer().fit(emulators, a[TRAIN], target="kge")
    with pytest.raises(ConfigError, match="torch_mlp"):
        AmortisedRegionalizer().fit(QuadraticBowl(a, [f"p{i}" for i in range(D)]), a[TRAIN])
    bad = a[TRAIN].copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="1 of 100 rows have non-finite"):
        AmortisedRegionalizer().fit(emulators, bad)
    with pytest.raises(ConfigError, match="penalty=-1"):
        AmortisedRegionalizer(penalty=-1)


def test_the_spread_penalty_keeps_the_network_where_the_members_agree(problem):
    """Members that disagree where ``u_0 > 0.5`` (a bonus of 0, 0.6 or 1.2 there): the penalty steers away from it.

    Without the penalty the network maximises the members' mean, and the mean bonus (0.6) outweighs
    what the bowl loses at ``u_0 = 1`` (at most ``w_0 * 0.9^2 = 0.32``), so it exploits the
    disagreement; with ``penalty = 2`` the bonus costs ``0.6 - 2 * 0.49 < 0`` and it stays away.
    """
    import dataclasses

    a, _, ts = problem
    basins = np.arange(50)                                   # 50 basins x 25 sets keep the fits small
    rows = ts.basin_index < len(basins)
    sub = dataclasses.replace(ts, basin_index=ts.basin_index[rows], params_unit=ts.params_unit[rows],
                              target=ts.target[rows], member=ts.member[rows])
    ramp = np.clip((sub.params_unit[:, 0] - 0.5) / 0.3, 0.0, 1.0)[:, None]
    members = [LargeSampleEmulator("torch_mlp", seed=s, hidden=[32, 32], max_epochs=25, patience=6,
                                   batch_size=256).fit(dataclasses.replace(sub, target=sub.target + bonus * ramp))
               for s, bonus in enumerate((0.0, 0.6, 1.2))]
    u_in, u_out = np.full((len(TEST), D), 0.5), np.full((len(TEST), D), 0.5)
    u_in[:, 0], u_out[:, 0] = 1.0, 0.2
    assert np.median(ensemble_scores(members, a[TEST], u_in)[1]) > 0.3      # they disagree there ...
    assert np.median(ensemble_scores(members, a[TEST], u_out)[1]) < 0.1     # ... and agree elsewhere
    spread, u0 = {}, {}
    for penalty in (0.0, 2.0):
        net = AmortisedRegionalizer(epochs=40, patience=20, batch_size=256, warm_start=32, warm_epochs=40,
                                    penalty=penalty).fit(members, a[basins])
        u = net.predict(a[TEST])
        spread[penalty], u0[penalty] = ensemble_scores(members, a[TEST], u)[1], u[:, 0]
    assert np.median(u0[0.0]) > 0.8 and np.median(u0[2.0]) < 0.6
    assert np.mean(spread[2.0]) < 0.25 * np.mean(spread[0.0])
    assert np.mean(spread[2.0] < spread[0.0]) > 0.9
