"""Worker thread pools stay within the worker's threads on a cluster made by lsegeo's factory.

A real LocalCluster of 2 worker processes x 1 thread is started through
:func:`lsegeo.parallel.dask_client`, from a process whose environment asks for 2 BLAS/OpenMP
threads (as a PBS job's does: ``OMP_NUM_THREADS`` = the job's cores), which the workers would
inherit without lsegeo's limits. On each worker, inside a task: every BLAS/OpenMP pool that
threadpoolctl sees (OpenBLAS loaded with numpy before the limits, XGBoost's OpenMP after) has 1
thread, ``OMP_WAIT_POLICY`` is ``PASSIVE``, torch (imported in the task) uses 1 thread, and the
XGBoost model that lsegeo's emulator settings build gets ``nthread`` 1. (torch is checked on one
worker: importing it costs seconds.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lsegeo.parallel import ClusterSettings, dask_client
from lsegeo.runtime import THREAD_COUNT_VARIABLES, thread_environment, worker_threads

pytestmark = pytest.mark.integration


def _worker_report(with_torch: bool) -> dict:
    """What one worker's task sees of its thread pools (runs on the worker); torch imported if asked."""
    import xgboost  # noqa: F401  (loads XGBoost's OpenMP runtime after the limits were set)
    from threadpoolctl import threadpool_info

    from lsegeo.emulators.lse import LargeSampleEmulator
    from lsegeo.emulators.registry import make_backend
    from lsegeo.emulators.settings import EmulatorSettings

    settings = EmulatorSettings(backend="xgboost")  # threads: None, resolved on the worker
    em = LargeSampleEmulator.from_settings(settings)
    rng = np.random.default_rng(0)
    backend = make_backend("xgboost", seed=0, n_jobs=em.n_jobs, n_estimators=2, max_depth=2)
    backend.fit(rng.random((64, 3)), rng.random((64, 1)))
    config = json.loads(backend.boosters[0].save_config())
    report = {"pools": [(p["user_api"], p["num_threads"]) for p in threadpool_info()],
              "wait_policy": os.environ.get("OMP_WAIT_POLICY"), "worker_threads": worker_threads(),
              "emulator_n_jobs": em.n_jobs, "xgb_nthread": int(config["learner"]["generic_param"]["nthread"])}
    report["torch"] = None
    if with_torch:
        try:
            import torch
        except ImportError:
            pass
        else:
            report["torch"] = torch.get_num_threads()
    return report


def test_workers_keep_to_their_threads(monkeypatch):
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "2")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with dask_client(ClusterSettings(n_workers=2, threads_per_worker=1)) as client:
        workers = sorted(client.scheduler_info()["workers"])
        assert len(workers) == 2
        # torch on one worker only: importing it costs seconds, and both workers are set up alike
        futures = [client.submit(_worker_report, i == 0, workers=[w], allow_other_workers=False, pure=False)
                   for i, w in enumerate(workers)]
        reports = client.gather(futures)
    for w, r in zip(workers, reports, strict=True):
        apis = {api for api, _ in r["pools"]}
        assert {"blas", "openmp"} <= apis, (w, r)  # numpy's BLAS and XGBoost's OpenMP are both seen
        assert all(n == 1 for _, n in r["pools"]), (w, r)
        assert r["wait_policy"] == "PASSIVE", (w, r)
        assert r["worker_threads"] == 1 and r["emulator_n_jobs"] == 1 and r["xgb_nthread"] == 1, (w, r)
        assert r["torch"] in (None, 1), (w, r)  # None: torch not installed, or the other worker


def test_thread_environment_and_process_limits(monkeypatch):
    """The variables name every pool's count and a passive wait; a set wait policy is kept."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    env = thread_environment(3)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert all(env[name] == "3" for name in THREAD_COUNT_VARIABLES)
    assert thread_environment(None) == {"OMP_WAIT_POLICY": "PASSIVE"}
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert thread_environment(0)["OMP_WAIT_POLICY"] == "ACTIVE" and thread_environment(0)["OMP_NUM_THREADS"] == "1"


def test_set_process_threads_in_a_child_process():
    """set_process_threads (what the worker plugin runs) limits numpy's BLAS, already loaded, in a fresh interpreter."""
    code = ("import numpy, json\n"
            "from threadpoolctl import threadpool_info\n"
            "from lsegeo.runtime import set_process_threads, worker_threads\n"
            "before = [p['num_threads'] for p in threadpool_info()]\n"
            "done = set_process_threads(1)\n"
            "print(json.dumps({'before': before, 'after': [p['num_threads'] for p in threadpool_info()],\n"
            "                  'threads': worker_threads(), 'limited': len(done['libraries'])}))\n")
    env = {k: v for k, v in os.environ.items() if k not in THREAD_COUNT_VARIABLES}
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"] and max(got["before"]) == 2
    assert got["after"] == [1] * len(got["after"]) and got["limited"] >= 1 and got["threads"] == 1


def test_in_process_workers_leave_the_client_alone():
    """Workers in the client's own process (processes=False) get no process-wide limits: the client keeps its cores."""
    from lsegeo.runtime import available_cores

    with dask_client(ClusterSettings(n_workers=1, threads_per_worker=1, options={"processes": False})) as client:
        assert client.submit(worker_threads, pure=False).result() == 1  # inside a task: the worker's threads
        assert worker_threads() == available_cores()
    assert worker_threads() == available_cores()


def test_importing_lsegeo_sets_a_passive_openmp_wait_policy_unless_one_is_set():
    """Before XGBoost or torch load OpenMP (benchmarks/omp_wait_policy.py: spinning threads on shared cores)."""
    code = "import os; import lsegeo; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE"] and "RuntimeWarning" not in out.stderr
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ACTIVE"]  # the user's choice is kept
    # too late for a library already loaded: said, with the remedy
    out = subprocess.run([sys.executable, "-c", "import xgboost; " + code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["PASSIVE"]
    assert "RuntimeWarning: xgboost imported before lsegeo" in out.stderr
