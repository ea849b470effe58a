"""``torch-sugar compare --jobs N``: runs in spawned worker processes give the same numbers, bit
for bit on the CPU, as the serial run; Ctrl-C stops every worker and keeps the finished runs."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_compare import ctrl_c_reaches, load_results, run_cli

TIMING_KEYS = ("epoch_seconds", "train_seconds")


def without_timings(run):
    run = {k: v for k, v in run.items() if k not in TIMING_KEYS + ("saved",)}
    run["history"] = [
        {k: v for k, v in h.items() if k not in ("train_seconds", "train_rows_per_second")}
        for h in run["history"]
    ]
    return run


def test_jobs_2_gives_the_serial_numbers(tmp_path, capsys):
    base = [
        "compare",
        "--dataset",
        "breast_cancer",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--hidden",
        "16,16",
        "--activations",
        "relu,bsilu",
        "--dropout",
        "0.1",
        "--threads",
        "1",
        "--quiet",
        "--no-plots",
        "--save-predictions",
    ]
    results = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        code, _, err = run_cli(
            base
            + ["--jobs", jobs, "--out", str(out), "--save-models", str(tmp_path / f"models{jobs}")]
            + ["--save-format", "torchscript"],  # no AOTInductor compile: test_compare_aoti.py
            capsys,
        )
        assert code == 0, err
        results[jobs] = load_results(out)
    serial, parallel = results["1"], results["2"]
    assert parallel["config"]["run"]["jobs"] == 2 and parallel["complete"] is True
    # the serial order, whatever order the workers finished in
    order = [(r["activation"], r["seed"]) for r in serial["runs"]]
    assert order == [("relu", 0), ("bsilu", 0), ("relu", 1), ("bsilu", 1)]
    assert [(r["activation"], r["seed"]) for r in parallel["runs"]] == order
    # every metric, the per-epoch history and the dead units exactly equal (json floats: repr)
    assert [without_timings(r) for r in parallel["runs"]] == [without_timings(r) for r in serial["runs"]]
    assert serial["runs"][0]["loss"] != serial["runs"][2]["loss"]  # the seeds differ
    for name in sorted(os.listdir(tmp_path / "jobs1" / "predictions")):
        assert (tmp_path / "jobs2" / "predictions" / name).read_bytes() == (
            tmp_path / "jobs1" / "predictions" / name
        ).read_bytes()
    for a, b in zip(serial["runs"], parallel["runs"]):  # saved by the workers: the same weights
        sa, sb = torch.load(a["saved"]["state_dict"]), torch.load(b["saved"]["state_dict"])
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        assert os.path.exists(b["saved"]["torchscript"]) and "models2" in b["saved"]["torchscript"]
    for key in ("loss", "accuracy", "auc"):
        assert (
            parallel["summary"]["vs_baseline"]["bsilu"][key] == serial["summary"]["vs_baseline"]["bsilu"][key]
        )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_jobs_ctrl_c_stops_every_worker_and_keeps_finished_runs(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C does, once a run is written.
    30 epochs: the 16 runs last long enough after the first is written (at 3 epochs an idle machine
    finished them all before the signal arrived)."""
    out = tmp_path / "out"
    argv = [
        sys.executable,
        "-m",
        "torch_sugar",
        "compare",
        "--jobs",
        "2",
        "--epochs",
        "30",
        "--seeds",
        "8",
        "--hidden",
        "16,16",
        "--activations",
        "relu,bsilu",
        "--threads",
        "1",
        "--no-plots",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=ctrl_c_reaches,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if load_results(out)["runs"]:
                    break
            except (OSError, ValueError):  # not written yet
                pass
            time.sleep(0.1)
        assert proc.poll() is None, "finished before it could be interrupted: " + proc.stderr.read()
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "runs in 2 processes" in stderr  # the one progress bar of all runs
    assert "interrupted; kept the" in stderr and "of 16" in stderr
    res = load_results(out)
    assert res["interrupted"] is True, stderr and res["complete"] is False
    kept = [(r["activation"], r["seed"]) for r in res["runs"]]
    serial = [(a, s) for s in range(8) for a in ("relu", "bsilu")]
    assert 1 <= len(kept) < 16 and kept == [t for t in serial if t in kept], stderr  # serial order
    assert all(r["status"] == "done" and r["epochs_run"] == 30 for r in res["runs"])
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(proc.pid), (
        "worker processes outlived the interrupted compare: "
        + subprocess.run(
            ["ps", "-o", "pid,stat,args", "-g", str(proc.pid)], capture_output=True, text=True
        ).stdout
    )
