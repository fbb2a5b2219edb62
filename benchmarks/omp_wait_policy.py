"""Benchmark: the OpenMP wait policy of the emulator fits, on cores shared with other work.

XGBoost and torch run their threads with OpenMP. By default a thread that waits for work spins
for a while before it sleeps; when every core is also wanted by other processes (the other
workers of a dask cluster, a second job, the test suite), the spinning threads take the cores
from the threads that have work. ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep at once; lsegeo
sets it in every process it starts and, on import, in its own (a value the user set is kept).

Each figure is one fit in a fresh process (the policy is read once, when the OpenMP runtime
loads): an XGBoost regressor (60 trees of depth 6, ``hist``) and a torch MLP (128 x 128, 3
epochs, batches of 512) on 95,000 rows of 41 features, the shape of an LSE training set. It is
timed with 1 and 2 threads, with the library's default policy and with ``PASSIVE``, on a quiet
machine and with ``--busy N`` processes spinning in pure Python beside it. Ratios are against
the default policy with 1 thread, measured in the same run.

    .venv/bin/python benchmarks/omp_wait_policy.py --busy 0 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

_FIT = r"""
import json, sys, time
import numpy as np
kind, threads = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
X = rng.random((95_000, 41)).astype(np.float32)
y = X[:, :3].sum(1) + rng.normal(0, 0.1, len(X))
if kind == "xgboost":
    import xgboost as xgb
    model = xgb.XGBRegressor(n_estimators=60, max_depth=6, tree_method="hist", n_jobs=threads)
    t0 = time.perf_counter()
    model.fit(X, y)
else:
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(41, 128), torch.nn.SiLU(), torch.nn.Linear(128, 128),
                              torch.nn.SiLU(), torch.nn.Linear(128, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xs, ys = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32))[:, None]
    t0 = time.perf_counter()
    for _ in range(3):
        for i in range(0, len(xs), 512):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(xs[i:i + 512]), ys[i:i + 512])
            loss.backward()
            opt.step()
print(json.dumps(time.perf_counter() - t0))
"""


def _spin() -> None:  # pragma: no cover - a busy competitor, killed by the parent
    while True:
        pass


def _fit(kind: str, threads: int, policy: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", _FIT, kind, str(threads)], env=env, check=True,
                         capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busy", nargs="+", type=int, default=[0, 2], help="busy competitors beside the fit")
    ap.add_argument("--repeats", type=int, default=2, help="fits per figure (the minimum is printed)")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; seconds per fit, minimum of {args.repeats}; ratio to default policy, 1 thread")
    print(f"{'busy':>4}  {'library':<8}  {'threads':>7}  {'default':>8}  {'PASSIVE':>8}  {'ratio':>13}")
    for busy in args.busy:
        spinners = [mp.Process(target=_spin, daemon=True) for _ in range(busy)]
        for p in spinners:
            p.start()
        try:
            for kind in ("xgboost", "torch"):
                base = None
                for threads in (1, 2):
                    t = {pol: min(_fit(kind, threads, pol) for _ in range(args.repeats))
                         for pol in (None, "PASSIVE")}
                    base = base or t[None]
                    print(f"{busy:>4}  {kind:<8}  {threads:>7}  {t[None]:>8.2f}  {t['PASSIVE']:>8.2f}  "
                          f"{t[None] / base:>5.1f}x {t['PASSIVE'] / base:>5.1f}x", flush=True)
        finally:
            for p in spinners:
                p.terminate()
            time.sleep(0.5)


if __name__ == "__main__":
    main()
