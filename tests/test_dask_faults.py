"""isogan.dask.Isomap when the cluster fails: a scheduler gone before or during the fit, workers without the memory
for the fit (refused before any work), and a worker that its nanny ends for memory mid-fit (a clear
error after Dask's retries, not a hang). A worker killed during the landmark paths (the fit then
completes identically) is in test_dask.py."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from isogan._backend.dask import ROWS_KEY_PREFIX
from isogan.dask import Isomap


def swiss_roll(n_samples):
    return da.from_array(make_swiss_roll(n_samples, random_state=0)[0], chunks=(n_samples // 4, 3))


def _start_scheduler(tmp_path):
    """A scheduler in its own process (so that it can be killed), and its address."""
    scheduler_file = tmp_path / "scheduler.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not scheduler_file.exists() or not scheduler_file.read_text().strip():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            process.wait()
            pytest.fail("the dask scheduler did not start")
        time.sleep(0.1)
    return process, scheduler_file


def test_scheduler_gone_raises_within_seconds(tmp_path):
    process, scheduler_file = _start_scheduler(tmp_path)
    try:
        with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
            client = distributed.Client(scheduler_file=str(scheduler_file), set_as_default=False, timeout=10)
            address = client.scheduler.address
            process.kill()
            process.wait()
            start = time.perf_counter()
            with client.as_current(), pytest.raises(RuntimeError, match=rf"scheduler \({address}\) cannot be reached"):
                Isomap(n_landmarks=10).fit(swiss_roll(200))
            assert time.perf_counter() - start < 20
            client.close(timeout=2)
    finally:
        process.kill()
        process.wait()


class _KillScheduler(distributed.WorkerPlugin):
    """Kills the scheduler's process when the first landmark-row task starts."""

    def __init__(self, scheduler_pid):
        self.scheduler_pid = scheduler_pid

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and str(key).startswith(ROWS_KEY_PREFIX):
            os.kill(self.scheduler_pid, signal.SIGKILL)


def test_scheduler_lost_mid_fit_raises_without_hanging(tmp_path):
    process, scheduler_file = _start_scheduler(tmp_path)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                               str(scheduler_file), "--nthreads", "1", "--no-nanny", "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
            client = distributed.Client(scheduler_file=str(scheduler_file), set_as_default=False, timeout=10)
            client.wait_for_workers(1, timeout=30)
            client.register_plugin(_KillScheduler(process.pid))
            start = time.perf_counter()
            with client.as_current(), pytest.raises(RuntimeError, match="tasks were cancelled.*connection to the scheduler"):
                Isomap(n_neighbors=8, n_landmarks=20).fit(swiss_roll(400))
            assert time.perf_counter() - start < 20
            client.close(timeout=2)
    finally:
        for child in (worker, process):
            child.kill()
            child.wait()


def test_workers_with_a_small_memory_limit_are_refused_before_any_work():
    """200k points, 300 landmarks: 240 MB of float64 rows per worker against a 64 MiB limit."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, memory_limit="64MiB",
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster, set_as_default=False) as client, client.as_current():
            X = da.zeros((200_000, 3), chunks=(50_000, 3))
            with pytest.raises(MemoryError, match=r"on 2 Dask worker\(s\) needs .* per worker .* smallest worker has "
                                                  r"67,108,864 bytes \(0.06 GiB\)\. .*more workers or more memory"):
                Isomap(n_landmarks=300).fit(X)
            assert not any(client.run(lambda dask_worker: len(dask_worker.data)).values())  # nothing computed


class _Ballast(distributed.WorkerPlugin):
    """Makes every landmark-row task outgrow its worker's memory limit, as a fit whose memory was
    mispredicted would: the task holds twice the limit until the nanny ends the worker."""

    def setup(self, worker):
        self.worker = worker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and str(key).startswith(ROWS_KEY_PREFIX):
            ballast = np.ones(2 * self.worker.memory_manager.memory_limit // 8)
            time.sleep(30 + ballast[0])  # ended by the nanny within its monitor interval


def test_worker_out_of_memory_mid_fit_raises_a_clear_error():
    config = {"distributed.scheduler.allowed-failures": 0, "distributed.worker.memory.terminate": 0.9,
              "distributed.worker.memory.pause": False, "distributed.worker.memory.spill": False,
              "distributed.worker.memory.target": False}
    with dask.config.set(config):
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, memory_limit="600MiB",
                                      dashboard_address=":0") as cluster:
            with distributed.Client(cluster, set_as_default=False) as client, client.as_current():
                client.register_plugin(_Ballast())
                start = time.perf_counter()
                with pytest.raises(RuntimeError, match=rf"workers died running task '{ROWS_KEY_PREFIX}.*memory limit"):
                    Isomap(n_neighbors=8, n_landmarks=20).fit(swiss_roll(400))
                assert time.perf_counter() - start < 25
