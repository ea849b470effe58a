"""``torch-sugar run``: a program under torch_sugar.patch, run as Python would run it (argv,
__main__, sys.path[0], exit codes, tracebacks), seeded with --seed, in spawned children, and
under torchrun with DistributedDataParallel (gradients equal to one process's)."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from reference import grad_input

TORCH_SUGAR = [sys.executable, "-m", "torch_sugar"]


def sh(argv, cwd=None, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


# A script that reports what it sees and the gradient of F.relu on known inputs.
PROBE = """
import json, random, sys
import torch, torch.nn.functional as F

x = torch.tensor([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0], requires_grad=True)
F.relu(x * 1, inplace=True).sum().backward()
print(json.dumps({
    "argv": sys.argv, "name": __name__, "path0": sys.path[0], "grad": x.grad.tolist(),
    "random": random.random(), "torch": torch.rand(3).tolist(),
}))
"""
PROBE_X = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0])


def probe(cmd, cwd=None):
    proc = sh(cmd, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_the_script_sees_what_python_gives_it_and_sugar_gradients(tmp_path):
    script = write(tmp_path / "probe.py", PROBE)
    plain, _ = probe([sys.executable, script, "a", "--flag", "-m", "x"])
    ran, err = probe(
        TORCH_SUGAR + ["run", "--surrogate", "nelu", "--alpha", "0.1", script, "a", "--flag", "-m", "x"]
    )
    assert (ran["argv"], ran["name"], ran["path0"]) == (plain["argv"], "__main__", plain["path0"])
    assert plain["grad"] == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    np.testing.assert_allclose(
        ran["grad"], grad_input("nelu", np.ones(6), PROBE_X, 0.1), rtol=2e-6, atol=1e-7
    )
    assert err.strip() == f"torch-sugar run: SUGAR (nelu, alpha=0.1) for every ReLU of {script}"
    negative, _ = probe(TORCH_SUGAR + ["run", "--quiet", "--negative-only", script])
    np.testing.assert_allclose(
        negative["grad"], grad_input("bsilu", np.ones(6), PROBE_X, None, True), rtol=2e-6
    )
    control, err = probe(TORCH_SUGAR + ["run", "--surrogate", "relu", "--", script])
    assert control["grad"] == plain["grad"] and "plain ReLU gradients (the control)" in err
    # `--quiet`, and the console script where the package is installed (make test-newest and
    # test-oldest put the build on PYTHONPATH instead: there is none)
    console = os.path.join(os.path.dirname(sys.executable), "torch-sugar")
    ran, err = probe(([console] if os.path.exists(console) else TORCH_SUGAR) + ["run", "--quiet", script])
    assert err == "" and ran["argv"] == [script]


def test_seed_gives_the_same_numbers_twice(tmp_path):
    script = write(tmp_path / "probe.py", PROBE + "import numpy; print(numpy.random.rand())\n")

    def numbers(seed):
        proc = sh(TORCH_SUGAR + ["run", "--quiet", "--seed", str(seed), script])
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    first = numbers(7)
    assert first == numbers(7) and first != numbers(8)


def test_exit_codes_and_tracebacks_pass_through(tmp_path):
    exits = write(tmp_path / "exits.py", "import sys\nsys.exit(int(sys.argv[1]))\n")
    for code in (0, 3):
        assert sh(TORCH_SUGAR + ["run", exits, str(code)]).returncode == code
    message = write(tmp_path / "message.py", "import sys\nsys.exit('bad input')\n")
    proc = sh(TORCH_SUGAR + ["run", "--quiet", message])
    assert (proc.returncode, proc.stderr) == (1, "bad input\n")
    raises = write(tmp_path / "raises.py", "def f():\n    raise ValueError('boom')\n\n\nf()\n")
    python, ours = sh([sys.executable, raises]), sh(TORCH_SUGAR + ["run", "--quiet", raises])
    assert ours.returncode == python.returncode == 1
    assert ours.stderr == python.stderr  # the same traceback: the script's frames only
    assert ours.stderr.startswith("Traceback") and "ValueError: boom" in ours.stderr


def test_module_mode(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg / "__main__.py", PROBE)
    plain, _ = probe([sys.executable, "-m", "mypkg", "z"], cwd=tmp_path)
    ran, _ = probe(TORCH_SUGAR + ["run", "--quiet", "--surrogate", "elu", "-m", "mypkg", "z"], cwd=tmp_path)
    assert (ran["argv"], ran["name"], ran["path0"]) == (plain["argv"], "__main__", plain["path0"])
    np.testing.assert_allclose(ran["grad"], grad_input("elu", np.ones(6), PROBE_X), rtol=2e-6)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    from torch_sugar.cli import main

    script = write(tmp_path / "probe.py", PROBE)
    argv0, path0 = list(sys.argv), list(sys.path)
    for argv, message in (
        (["--surrogate", "nope", script], "unknown surrogate 'nope'"),
        (["--surrogate", "gelu", "--alpha", "1", script], "takes no alpha"),
        (["--alpha", "x", script], "argument --alpha: invalid float value: 'x'"),
        ([str(tmp_path / "missing.py")], "can't open file"),
        ([], "no program given"),
        (["-m"], "-m needs a module name"),
        (["-m", "no_such_module_here"], "no module named 'no_such_module_here'"),
        (["--bogus", script], "unrecognized arguments: --bogus"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(["run"] + argv)
        lines = capsys.readouterr().err.strip().splitlines()
        assert exited.value.code == 2, (argv, lines)
        assert len(lines) == 1 and lines[0].startswith("torch-sugar run: error:") and message in lines[0], (
            lines
        )
        sys.argv[:], sys.path[:] = argv0, path0
    # The same through a new process: one line, exit 2.
    proc = sh(TORCH_SUGAR + ["run", "--surrogate", "nope", script])
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_spawned_children_run_under_the_same_patch(tmp_path):
    script = write(
        tmp_path / "children.py",
        """
        import multiprocessing as mp
        import torch, torch.nn.functional as F

        def work(q):
            x = torch.tensor([-1.0, 0.5], requires_grad=True)
            F.relu(x).sum().backward()
            q.put(x.grad.tolist())

        class Worker(mp.get_context("spawn").Process):  # a subclass overriding run()
            def __init__(self, q):
                super().__init__()
                self.q = q

            def run(self):
                work(self.q)

        if __name__ == "__main__":
            for method in ("spawn", "forkserver", "fork"):
                ctx = mp.get_context(method)
                q = ctx.Queue()
                p = ctx.Process(target=work, args=(q,))
                p.start()
                print(method, q.get())
                p.join()
            q = mp.get_context("spawn").Queue()
            w = Worker(q)
            w.start()
            print("subclass", q.get())
            w.join()
        """,
    )
    proc = sh(TORCH_SUGAR + ["run", "--quiet", "--surrogate", "elu", script], timeout=240)
    assert proc.returncode == 0, proc.stderr
    want = grad_input("elu", np.ones(2), np.array([-1.0, 0.5]))
    lines = proc.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["spawn", "forkserver", "fork", "subclass"]
    for line in lines:
        np.testing.assert_allclose(json.loads(line.split(" ", 1)[1]), want, rtol=1e-6)


DDP_SCRIPT = """
import json, os, sys
import torch, torch.distributed as dist, torch.nn as nn, torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 16), nn.Linear(16, 1)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

torch.manual_seed(0)
model = Net()
x, y = torch.randn(8, 4), torch.randn(8, 1)
if len(sys.argv) > 2:  # one process, the whole batch
    F.mse_loss(model(x), y).backward()
    grads = [p.grad.tolist() for p in model.parameters()]
else:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    ddp = nn.parallel.DistributedDataParallel(model)
    half = slice(rank * 4, rank * 4 + 4)
    F.mse_loss(ddp(x[half]), y[half]).backward()
    grads = [p.grad.tolist() for p in ddp.parameters()]
    dist.barrier()
    dist.destroy_process_group()
    if rank:
        sys.exit(0)
with open(sys.argv[1], "w") as f:
    json.dump(grads, f)
"""


def test_torchrun_two_processes_match_one(tmp_path):
    script = write(tmp_path / "ddp.py", DDP_SCRIPT)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = sh(
        torchrun + ["-m", "torch_sugar", "run", "--surrogate", "mish", script, str(tmp_path / "ddp.json")],
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("torch-sugar run: SUGAR (mish)") == 1  # rank 0 alone says it
    for surrogate in ("mish", "relu"):
        single = sh(
            TORCH_SUGAR
            + [
                "run",
                "--quiet",
                "--surrogate",
                surrogate,
                script,
                str(tmp_path / f"{surrogate}.json"),
                "single",
            ]
        )
        assert single.returncode == 0, single.stderr
    ddp, mish, relu = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("ddp", "mish", "relu"))
    for a, b in zip(ddp, mish):
        torch.testing.assert_close(torch.tensor(a), torch.tensor(b), rtol=1e-5, atol=1e-7)
    assert any(not torch.allclose(torch.tensor(a), torch.tensor(b)) for a, b in zip(mish, relu))


@pytest.mark.parametrize("argv", [["run", "--help"], ["--help"]])
def test_help_names_run(argv):
    proc = sh(TORCH_SUGAR + argv)
    assert proc.returncode == 0 and "run" in proc.stdout
    if argv[0] == "run":
        assert "torchrun" in proc.stdout and "TorchScript" in proc.stdout


def test_torchscript_in_the_program_is_named_in_a_warning(tmp_path):
    script = write(
        tmp_path / "scripted.py",
        """
        import torch
        a = torch.jit.script(torch.nn.ReLU())
        b = torch.jit.script(torch.nn.ReLU())
        print("ran")
        """,
    )
    proc = sh(TORCH_SUGAR + ["run", "--quiet", script])
    assert proc.returncode == 0 and proc.stdout == "ran\n"
    assert proc.stderr.count("the program calls torch.jit.script: TorchScript code runs without Python") == 1


EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "train_digits.py")


def test_the_tutorial_example_trains_differently_under_run():
    argv = [EXAMPLE, "--epochs", "1", "--depth", "4"]
    plain = sh([sys.executable] + argv, timeout=240)
    sugar = sh(TORCH_SUGAR + ["run", "--quiet"] + argv, timeout=240)
    assert plain.returncode == sugar.returncode == 0, (plain.stderr, sugar.stderr)
    for out in (plain.stdout, sugar.stdout):
        assert re.fullmatch(r"report: step 1  val_loss=\S+  val_acc=\S+  dead_fraction=\S+\n", out), out
    assert plain.stdout != sugar.stdout  # the same seed and data: only the gradients differ
