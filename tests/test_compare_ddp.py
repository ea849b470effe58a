"""``torchrun --nproc_per_node 2 -m torch_sugar compare``: DistributedDataParallel on the CPU with
gloo gives the metrics of a single-process run on the same data (within 1e-5 relative: only the
order of floating-point sums differs), the ranks end every run with identical weights (so they
applied identical SUGAR gradients), only rank 0 writes, and bad input stops every rank with the
same one-line error, also when only one rank has it."""

import os
import subprocess
import sys

import pytest
from test_compare import load_results, run_cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gloo via torchrun on POSIX here")

ARGS = [
    "compare",
    "--dataset",
    "breast_cancer",
    "--hidden",
    "16,16",
    "--epochs",
    "2",
    "--seeds",
    "1",
    "--activations",
    "relu,bsilu",
    "--pos-weight",
    "auto",
    "--threads",
    "1",
    "--quiet",
    "--no-plots",
]


def torchrun(argv, timeout=180):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "torch_sugar",
        ]
        + argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_ddp_two_ranks_match_one_process(tmp_path, capsys):
    proc = torchrun(ARGS + ["--out", str(tmp_path / "ddp")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    code, _, err = run_cli(ARGS + ["--out", str(tmp_path / "single")], capsys)
    assert code == 0, err
    ddp, single = load_results(tmp_path / "ddp"), load_results(tmp_path / "single")
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert proc.stdout.count("results: ") == 1  # rank 0 alone prints and writes
    for a, b in zip(ddp["runs"], single["runs"]):
        assert (a["activation"], a["seed"], a["selected_epoch"]) == (
            b["activation"],
            b["seed"],
            b["selected_epoch"],
        )
        for key in ("loss", "accuracy", "auc", "pr_auc"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
        for ha, hb in zip(a["history"][1:], b["history"][1:]):
            for key in ("train_loss", "val_loss", "val_weighted_loss", "val_auc"):
                assert ha[key] == pytest.approx(hb[key], rel=1e-5), key
        digests = a["ddp"]["parameter_digests"]
        assert a["ddp"]["world_size"] == 2 and len(digests) == 2 and digests[0] == digests[1]
    assert ddp["runs"][0]["ddp"]["parameter_digests"] != ddp["runs"][1]["ddp"]["parameter_digests"]


def test_ddp_bad_input_on_one_rank_stops_every_rank(tmp_path):
    """A --model-fn that fails on rank 1 only: rank 0 must not go on into training (it would wait
    for rank 1 forever); both ranks print rank 1's error and stop."""
    fn = tmp_path / "model.py"
    fn.write_text(
        "import os\nfrom torch import nn\n\n\ndef build(spec, n_outputs):\n"
        "    if os.environ.get('RANK') == '1':\n"
        "        raise ValueError('broken on rank 1')\n"
        "    return nn.Sequential(nn.Linear(spec.shape[0], 8), nn.ReLU(), nn.Linear(8, n_outputs))\n"
    )
    proc = torchrun(
        [
            "compare",
            "--dataset",
            "wine",
            "--model-fn",
            f"{fn}:build",
            "--quiet",
            "--out",
            str(tmp_path / "out"),
        ],
        timeout=120,
    )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("torch-sugar compare: error:")]
    assert len(errors) == 2 and errors[0] == errors[1], proc.stderr[-3000:]
    assert "(rank 1) --model-fn:" in errors[0] and "broken on rank 1" in errors[0]
    assert not (tmp_path / "out" / "results.json").exists()


class _Exited(Exception):
    pass


def test_a_rank_waits_for_the_others_then_ends_with_os_exit(tmp_path, capsys, monkeypatch):
    """The end of a torchrun rank, in this process with a one-rank gloo group: compare leaves the
    group through a barrier and the CLI then ends the process with os._exit (skipping the
    interpreter teardown where a finished rank was sometimes aborted). Before, compare.run left the
    group without a barrier and the CLI, finding no group, returned normally."""
    import torch.distributed as dist

    from torch_sugar.experiments import distributed

    barriers, exits = [], []
    real_barrier = dist.monitored_barrier
    monkeypatch.setattr(
        dist, "monitored_barrier", lambda *a, **k: (barriers.append(1), real_barrier(*a, **k))
    )

    def fake_exit(code):
        exits.append(code)
        raise _Exited

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(distributed, "_left_group", False, raising=False)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        with pytest.raises(_Exited):
            run_cli(ARGS + ["--out", str(tmp_path / "out")], capsys)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert exits == [0] and barriers, (exits, barriers)
    assert not dist.is_initialized()
    assert load_results(tmp_path / "out")["runs"]
