"""End to end under Verilator: compiled Programs on the whole accelerator, every output
word equal to the golden model, at two AccelConfigs (one Verilator build each), on random
models and on models trained on digits. LARGE's vector unit takes a block in four parts."""
import numpy as np
import pytest
import torch
from torch import nn

from circa.cli import main
from circa.compiler import compress, digits, frontend
from circa.compiler.compile import quantize_and_schedule
from circa.config import AccelConfig, EngineConfig
from circa.sim import accel_rtl

pytestmark = pytest.mark.slow

SMALL = AccelConfig(EngineConfig(k=8, lanes=2, max_q=16, weight_depth=256), sparse_block=(4, 4),
                    act_depth=512, imem_depth=128, sparse_depth=1024)
LARGE = AccelConfig(EngineConfig(k=16, lanes=4, max_q=16, weight_depth=256),
                    sparse_block=(4, 4), act_depth=1024, imem_depth=128, sparse_depth=2048,
                    vector_width=4)


def compile_for(cfg, model, schemes, x, y=None, train=False):
    schemes = compress.plan(model, schemes, cfg.k)
    model = compress.compress(model, schemes, torch.as_tensor(np.asarray(x), dtype=torch.float32),
                              y, train=train)
    network = frontend.import_model(model)
    xb = np.asarray(x if network.batch_first or network.kind == "mlp" else x.swapaxes(0, 1))
    return (*quantize_and_schedule(model, schemes, cfg, xb), xb)


def check(program, qnet, x):
    run = accel_rtl.run(program, x)
    assert all(s[0] == 0 for s in run.status), run.status
    golden = qnet.golden(x).numpy()
    golden = golden if program.sequence_output else golden[:, None]
    assert np.array_equal(run.outputs, golden)          # every word, every input
    return run


def random_models():
    torch.manual_seed(0)
    return {
        "mlp": (nn.Sequential(nn.Linear(20, 40), nn.ReLU(), nn.Linear(40, 10)), "circulant:8"),
        "lstm_proj": (nn.LSTM(8, 28, batch_first=True, proj_size=12), "circulant:8"),
        "gru": (nn.GRU(8, 20, batch_first=True), "sparse:4x4:0.5"),
        "lstm2": (nn.LSTM(8, 20, num_layers=2), "circulant:8"),
        "mixed": (nn.Sequential(nn.Linear(24, 36), nn.ReLU(), nn.Linear(36, 20), nn.ReLU(),
                                nn.Linear(20, 6)),
                  {"0": "circulant:8", "2": "sparse:4x4:0.5", "4": "dense"}),
    }


@pytest.mark.parametrize("name", list(random_models()))
def test_random_models_bit_exact(name):
    model, scheme = random_models()[name]
    rng = np.random.default_rng(1)
    if name in ("mlp", "mixed"):
        x = rng.normal(size=(16, model[0].in_features))
    else:
        x = rng.normal(size=(16, 5, 8)) * 0.7
        x = x if model.batch_first else x.swapaxes(0, 1)
    qnet, program, xb = compile_for(SMALL, model, scheme, x)
    run = check(program, qnet, xb)
    kinds = {i.op.name for i in program.instructions}
    if name == "mixed":
        assert {"MVC", "MVS"} <= kinds
    assert run.counters[0]["cycles"] > 0


@pytest.fixture(scope="module")
def sequences():
    return digits.load_sequences()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_trained_digits_rnn_bit_exact(kind, sequences):
    x_train, y_train, x_test, y_test = sequences
    model = digits.train_rnn(kind, hidden=32, proj_size=16 if kind == "lstm" else 0,
                             epochs=15)
    qnet, program, _ = compile_for(LARGE, model, "circulant:16", x_train, y_train, train=True)
    x = x_test[:40].numpy()
    run = check(program, qnet, x)
    accuracy = (run.outputs[:, 0].argmax(-1) == y_test[:40].numpy()).mean()
    assert accuracy > 0.8, accuracy


def test_sim_command_on_compiled_digits_mlp(tmp_path, capsys):
    x_train, y_train, x_test, y_test = digits.load()
    torch.save(digits.train_mlp(epochs=15), tmp_path / "mlp.pt")
    np.savez(tmp_path / "train.npz", x=x_train.numpy(), y=y_train.numpy())
    np.save(tmp_path / "x.npy", x_test.numpy()[:50])
    assert main(["compile", str(tmp_path / "mlp.pt"), "-o", str(tmp_path / "prog"),
                 "--train", str(tmp_path / "train.npz"), "--lanes", "4"]) == 0
    capsys.readouterr()
    assert main(["sim", str(tmp_path / "prog"), "--inputs", str(tmp_path / "x.npy"),
                 "--outputs", str(tmp_path / "y.npy"), "--json"]) == 0
    import json
    report = json.loads(capsys.readouterr().out)
    assert report["bit_exact"] and report["samples"] == 50 and report["mismatches"] == 0
    assert report["cycles_per_inference"] > 0 and 0 < report["utilisation"]["circulant"] <= 1
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (50, 10)
    assert (y.argmax(1) == y_test.numpy()[:50]).mean() > 0.85
