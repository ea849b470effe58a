"""torch_sugar.integrations: the Lightning and Hugging Face DeadUnitCallbacks log, at each
validation/evaluation of a real fit/train, the dead and dormant fractions that a DeadUnitMonitor
computes on the same validation data with the same weights; and importing torch_sugar imports
neither framework."""

import copy
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from torch_sugar import DeadUnitMonitor


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def test_imports_and_missing_frameworks():
    """In a fresh process: ``import torch_sugar, torch_sugar.integrations`` imports no framework, and
    where a framework cannot be imported, its submodule's ImportError names what to install."""
    proc = _python(
        """
        import sys
        import torch_sugar, torch_sugar.integrations
        print(sorted(m for m in ("lightning", "pytorch_lightning", "transformers") if m in sys.modules))
        for submodule, framework in (("lightning", "lightning"), ("transformers", "transformers")):
            sys.modules[framework] = None  # as if it were not installed
            try:
                __import__("torch_sugar.integrations." + submodule)
            except ImportError as exc:
                print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    imported, lightning_error, transformers_error = proc.stdout.strip().splitlines()
    assert imported == "[]"
    for error, name, install in (
        (lightning_error, "lightning", "pip install lightning`"),
        (transformers_error, "transformers", "pip install transformers accelerate`"),
    ):
        assert f"torch_sugar.integrations.{name} needs the {name!r} package" in error
        assert install in error and f"pip install 'torch-sugar[{name}]'" in error


def _lightning_callback():
    pytest.importorskip("lightning.pytorch")
    from torch_sugar.integrations.lightning import DeadUnitCallback

    return DeadUnitCallback


def _transformers_callback():
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from torch_sugar.integrations.transformers import DeadUnitCallback

    return DeadUnitCallback


# -- the model both frameworks train ----------------------------------------------------------
def _frozen_first_layer() -> nn.Linear:
    """Fixed weights (not trained), so that the validation data have known dead and dormant units:
    unit 0 reads x0, which is > 0 in the training rows and < 0 in the validation rows (dead on the
    validation data only: counting a training batch would make it alive); unit 1 is 0.001 * x1
    (dormant, not dead); units 2-7 read x1..x3 (all > 0) with positive weights (neither)."""
    layer = nn.Linear(4, 8)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(8, 4, generator=torch.Generator().manual_seed(3)) + 0.2)
        layer.weight[:, 0] = 0.0
        layer.weight[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])
        layer.weight[1] = torch.tensor([0.0, 0.001, 0.0, 0.0])
        layer.bias.zero_()
        layer.bias[2:] = 0.5
    layer.requires_grad_(False)
    return layer


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(_frozen_first_layer(), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 1))


def _rows(n: int, x0_sign: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 4, generator=gen) + 0.1
    x[:, 0] *= x0_sign
    y = x[:, 1:].sum(dim=1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=gen)
    return x, y


TRAIN, VAL = _rows(64, 1.0, seed=1), _rows(24, -1.0, seed=2)


def _expected(model: nn.Module, batches, unit_dim=1, forward=None) -> dict:
    """The fractions a DeadUnitMonitor gives on ``batches`` with this model's weights."""
    with DeadUnitMonitor(model, unit_dim=unit_dim) as monitor, torch.no_grad():
        model.eval()
        for batch in batches:
            (forward or model)(batch)
        res = monitor.results()
    values = {"dead_fraction": res.fraction, "dormant_fraction": res.dormant_fraction}
    for layer in res.layers:
        values[f"dead_fraction/{layer.name}"] = layer.fraction
        values[f"dormant_fraction/{layer.name}"] = layer.dormant_fraction
    return values


# -- Lightning ------------------------------------------------------------------------------------
class _Recorder:
    """Snapshots of the model at each validation (after the sanity check), to recompute from."""

    def __init__(self):
        self.snapshots = []


class _Holder(nn.Module):
    """``net`` under the attribute name the LightningModule gives it, so the layer names match."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def _lightning_parts():
    L = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import Logger

    class TinyModule(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _net()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.mse_loss(self(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", F.mse_loss(self(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    class Snapshot(L.Callback):
        def __init__(self, recorder):
            self.recorder = recorder

        def on_validation_epoch_start(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self.recorder.snapshots.append(_Holder(copy.deepcopy(pl_module.net)))

    class MemoryLogger(Logger):
        """Every log_metrics call, as the loggers receive them."""

        def __init__(self):
            super().__init__()
            self.logged = []

        name, version = "memory", 0

        def log_metrics(self, metrics, step=None):
            self.logged.append(dict(metrics))

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    return L, TinyModule, Snapshot, MemoryLogger


def _fit_lightning(callback, tmp_path, val=VAL, **trainer_args):
    L, TinyModule, Snapshot, MemoryLogger = _lightning_parts()
    recorder, logger = _Recorder(), MemoryLogger()
    trainer_args = {"devices": 1, **trainer_args}
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=logger,
        callbacks=[callback, Snapshot(recorder)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        log_every_n_steps=1,
        default_root_dir=str(tmp_path),
        **trainer_args,
    )
    module = TinyModule()
    trainer.fit(
        module,
        DataLoader(TensorDataset(*TRAIN), batch_size=16, shuffle=True),
        DataLoader(TensorDataset(*val), batch_size=5),
    )
    return trainer, module, recorder, logger


def _val_batches():
    return [x for x, _ in DataLoader(TensorDataset(*VAL), batch_size=5)]


def test_lightning_logs_the_fractions_of_each_validation(tmp_path):
    DeadUnitCallback = _lightning_callback()

    trainer, module, recorder, logger = _fit_lightning(DeadUnitCallback(per_layer=True), tmp_path)
    logged = [entry for entry in logger.logged if "val/dead_fraction" in entry]
    assert len(logged) == len(recorder.snapshots) == 2  # one per epoch; not the sanity check
    for entry, snapshot in zip(logged, recorder.snapshots):
        want = _expected(snapshot, _val_batches())
        assert want["dead_fraction/net.1"] == 1 / 8  # unit 0, dead on the validation rows only
        assert want["dormant_fraction/net.1"] == 2 / 8  # and unit 1
        got = {k[len("val/") :]: v for k, v in entry.items() if k.startswith("val/")}
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-6), key
    assert set(trainer.callback_metrics) >= {"val/dead_fraction", "val/dormant_fraction", "val_loss"}
    assert trainer.callback_metrics["val/dormant_fraction"].item() == pytest.approx(
        _expected(_Holder(module.net), _val_batches())["dormant_fraction"], rel=1e-6
    )
    assert not any(m._forward_hooks for m in module.modules())  # teardown removed the hooks


def test_lightning_totals_only_by_default_and_other_prefix(tmp_path):
    DeadUnitCallback = _lightning_callback()

    trainer, module, _, logger = _fit_lightning(DeadUnitCallback(tau=0.5, prefix="dead_units/"), tmp_path)
    entry = [e for e in logger.logged if "dead_units/dead_fraction" in e][-1]
    assert sorted(k for k in entry if k.startswith("dead_units/")) == [
        "dead_units/dead_fraction",
        "dead_units/dormant_fraction",
    ]
    with DeadUnitMonitor(module.net, tau=0.5) as monitor, torch.no_grad():
        for x in _val_batches():
            module.net(x)
        assert entry["dead_units/dormant_fraction"] == pytest.approx(monitor.results().dormant_fraction)


def test_lightning_bad_arguments():
    DeadUnitCallback = _lightning_callback()

    with pytest.raises(ValueError, match="tau must be a finite number >= 0"):
        DeadUnitCallback(tau=-1)
    with pytest.raises(TypeError, match="per_layer must be True or False, got 'yes'"):
        DeadUnitCallback(per_layer="yes")
    with pytest.raises(TypeError, match="prefix must be a str"):
        DeadUnitCallback(prefix=None)


# -- Hugging Face Trainer ------------------------------------------------------------------------
class _TokenRows(Dataset):
    """Fixed-length token sequences (no padding) with a label: what the default collator stacks.
    Training and evaluation rows draw their tokens from different halves of the vocabulary, so
    counting a training batch would change the evaluation's dormancy scores."""

    def __init__(self, n: int, seed: int, tokens: range, length=6):
        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(tokens.start, tokens.stop, (n, length), generator=gen)
        self.labels = (self.ids[:, 0] % 2).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones_like(self.ids[i]),
            "labels": self.labels[i],
        }


def _hf_trainer(tmp_path, callbacks, eval_dataset, epochs=2):
    """A two-layer BERT built from a config (nothing downloaded) whose feed-forward activation is
    ``hidden_act="relu"``, an nn.ReLU module in each layer, in a Trainer on the CPU."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    config = transformers.BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        hidden_act="relu",
        max_position_embeddings=8,
        num_labels=2,
    )
    torch.manual_seed(0)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=epochs,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=7,
        learning_rate=1e-2,
        eval_strategy="epoch",
        logging_strategy="epoch",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return transformers.Trainer(
        model=transformers.BertForSequenceClassification(config),
        args=args,
        train_dataset=_TokenRows(32, seed=1, tokens=range(0, 16)),
        eval_dataset=eval_dataset,
        callbacks=callbacks,
    )


EVAL_ROWS = _TokenRows(19, seed=2, tokens=range(16, 32))


def _hf_expected(model, dataset) -> dict:
    """The fractions a DeadUnitMonitor gives with these weights, in one pass over ``dataset``."""
    ids = torch.stack([dataset[i]["input_ids"] for i in range(len(dataset))])
    return _expected(
        model, [ids], unit_dim=-1, forward=lambda x: model(input_ids=x, attention_mask=torch.ones_like(x))
    )


def _hf_recorders():
    """Callbacks that copy the model at each evaluation and keep every on_log dict they see."""
    transformers = pytest.importorskip("transformers")

    class Snapshots(transformers.TrainerCallback):
        def __init__(self):
            self.models, self.logs = [], []

        def on_evaluate(self, args, state, control, model=None, **kwargs):
            self.models.append(copy.deepcopy(model))

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.append(dict(logs))

    return Snapshots()


def _assert_fractions(got: dict, prefix: str, want: dict):
    assert {k[len(prefix) :] for k in got if k.startswith(prefix) and "_fraction" in k} == want.keys()
    for key, value in want.items():
        assert got[prefix + key] == pytest.approx(value, rel=1e-6, abs=1e-12), key


def test_transformers_adds_the_fractions_to_each_evaluation_log(tmp_path):
    DeadUnitCallback = _transformers_callback()

    recorder = _hf_recorders()
    trainer = _hf_trainer(tmp_path, [DeadUnitCallback(per_layer=True), recorder], EVAL_ROWS)
    trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluations) == len(recorder.models) == 2
    layers = [f"bert.encoder.layer.{i}.intermediate.intermediate_act_fn" for i in range(2)]
    for entry, model in zip(evaluations, recorder.models):
        want = _hf_expected(model, EVAL_ROWS)
        assert {k.split("/", 1)[1] for k in want if "/" in k} == set(layers)  # 24 features each
        _assert_fractions(entry, "eval_", want)
    assert 0 < evaluations[-1]["eval_dormant_fraction"] < 1
    # The training logs have none; a callback after this one sees them in on_log.
    assert not any("dead" in key for entry in trainer.state.log_history if "loss" in entry for key in entry)
    eval_logs = [logs for logs in recorder.logs if "eval_loss" in logs]
    assert [logs["eval_dormant_fraction"] for logs in eval_logs] == [
        e["eval_dormant_fraction"] for e in evaluations
    ]


def test_transformers_evaluate_and_predict(tmp_path):
    """evaluate() alone (no training) returns the fractions, also under another metric_key_prefix;
    the forward passes of predict() do not leak into the next evaluation."""
    DeadUnitCallback = _transformers_callback()

    trainer = _hf_trainer(tmp_path, [DeadUnitCallback()], EVAL_ROWS)
    want = _hf_expected(trainer.model, EVAL_ROWS)
    want = {k: v for k, v in want.items() if "/" not in k}  # per_layer=False: the totals only
    trainer.predict(_TokenRows(9, seed=5, tokens=range(0, 4)))
    metrics = trainer.evaluate()
    _assert_fractions(metrics, "eval_", want)
    _assert_fractions(trainer.state.log_history[-1], "eval_", want)
    _assert_fractions(trainer.evaluate(metric_key_prefix="test"), "test_", want)


def test_transformers_add_to_runs_before_the_reporters(tmp_path):
    """add_to(trainer) makes the callback the first: a reporting callback that the Trainer had
    before it (as the report_to integrations are) sees the fractions in its on_log."""
    DeadUnitCallback = _transformers_callback()
    reporter = _hf_recorders()
    trainer = _hf_trainer(tmp_path, [reporter], EVAL_ROWS)
    callback = DeadUnitCallback().add_to(trainer)
    assert trainer.callback_handler.callbacks[0] is callback
    metrics = trainer.evaluate()
    assert reporter.logs[-1]["eval_dormant_fraction"] == metrics["eval_dormant_fraction"]
    assert reporter.logs[-1]["eval_dead_fraction"] == metrics["eval_dead_fraction"]


def test_transformers_bad_arguments_and_late_callback(tmp_path):
    DeadUnitCallback = _transformers_callback()

    with pytest.raises(ValueError, match="unit_dim must be a nonzero int"):
        DeadUnitCallback(unit_dim=0)
    with pytest.raises(TypeError, match="tau must be a number"):
        DeadUnitCallback(tau="0.1")
    trainer = _hf_trainer(tmp_path, [], EVAL_ROWS)
    trainer.add_callback(DeadUnitCallback())  # after the Trainer was built: the model is not hooked
    with pytest.warns(UserWarning, match="pass it in Trainer"):
        metrics = trainer.evaluate()
    assert "eval_dead_fraction" not in metrics
    trainer.train()  # training begins: now the model is hooked
    assert "eval_dead_fraction" in trainer.state.log_history[-2]  # the last evaluation (then train_*)


@pytest.mark.skipif(sys.platform != "linux", reason="Lightning's ddp_fork with gloo, on Linux here")
def test_lightning_ddp_two_processes_log_the_whole_validation_set(tmp_path):
    """Two CPU processes (gloo), each validating half of the rows: the logged fractions are those of
    all rows. Unit 0 is alive on one row only, which lands on rank 1, so rank 0's own counts alone
    would call it dead."""
    DeadUnitCallback = _lightning_callback()

    val = (VAL[0].clone(), VAL[1])
    val[0][1, 0] = 0.5  # row 1: DistributedSampler gives rank 1 the odd rows
    trainer, module, _, _ = _fit_lightning(
        DeadUnitCallback(per_layer=True), tmp_path, val=val, strategy="ddp_fork", devices=2
    )
    want = _expected(_Holder(module.net), [val[0]])
    assert want["dead_fraction/net.1"] == 0 and want["dormant_fraction/net.1"] == 2 / 8
    got = {k[len("val/") :]: v.item() for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    assert got == pytest.approx(want, rel=1e-6)
