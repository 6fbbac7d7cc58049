"""Compiler front end: safe loading, supported models -> IR, float reference == PyTorch."""
import os
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from circa.compiler.frontend import (
    GRU, LSTM, SAFE_CLASSES, Dense, ModelError, Network, ReLU, RNNClassifier, import_model,
    load_model, run_float,
)

ATOL = 1e-5

pytestmark = pytest.mark.filterwarnings(
    "ignore:LSTM with projections:UserWarning", "ignore::DeprecationWarning")


def _seed(s=0):
    torch.manual_seed(s)
    return np.random.default_rng(s)


def _mlp():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(),
                         nn.Sequential(nn.Linear(8, 5, bias=False), nn.ReLU()), nn.Linear(5, 3))


def _rnn_input(batch_first, B=3, T=5, F=4):
    x = torch.randn(B, T, F)
    return x if batch_first else x.transpose(0, 1).contiguous()


# Everything one test file can save and load.
def _models():
    _seed(1)
    return {
        "linear": nn.Linear(4, 3),
        "linear_nobias": nn.Linear(4, 3, bias=False),
        "mlp": _mlp(),
        "lstm": nn.LSTM(4, 6, num_layers=2, batch_first=True),
        "lstm_proj": nn.LSTM(4, 6, proj_size=3, bias=False),
        "gru": nn.GRU(4, 5, num_layers=2, bias=False, batch_first=True),
        "clf_lstm": RNNClassifier(nn.LSTM(4, 6, proj_size=2), nn.Linear(2, 3)),
        "clf_gru": RNNClassifier(nn.GRU(4, 5, batch_first=True),
                                 nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2))),
    }


def _forward(model, x):
    with torch.no_grad():
        y = model(x)
    return (y[0] if isinstance(y, tuple) else y).numpy()


# ------------------------------------------------------------------- float reference

@pytest.mark.parametrize("name", ["linear", "linear_nobias", "mlp"])
def test_mlp_matches_torch(name):
    model = _models()[name]
    net = import_model(model)
    assert net.kind == "mlp" and not net.head_on_last_step
    x = torch.randn(7, net.input_features)
    np.testing.assert_allclose(run_float(net, x), _forward(model, x), atol=ATOL)
    np.testing.assert_allclose(net.reference(x.numpy()), _forward(model, x), atol=ATOL)


def test_mlp_ir_flattened():
    net = import_model(_mlp())
    assert [type(l) for l in net.layers] == [Dense, ReLU, Dense, ReLU, Dense]
    assert [l.name for l in net.layers] == ["0", "1", "2.0", "2.1", "3"]
    assert net.layers[2].bias is None and net.layers[2].weight.shape == (5, 8)
    assert (net.input_features, net.output_features) == (6, 3)
    assert not net.layers[0].weight.flags.writeable


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("proj", [0, 3])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_matches_torch(num_layers, proj, batch_first, bias):
    _seed(num_layers * 10 + proj)
    model = nn.LSTM(4, 6, num_layers=num_layers, proj_size=proj, batch_first=batch_first, bias=bias)
    net = import_model(model)
    assert net.kind == "rnn" and net.batch_first == batch_first
    assert len(net.layers) == num_layers and all(isinstance(l, LSTM) for l in net.layers)
    l0 = net.layers[0]
    assert l0.w_ih.shape == (24, 4) and l0.w_hh.shape == (24, proj or 6)
    assert (l0.w_hr is None) == (proj == 0) and (l0.b_ih is None) == (not bias)
    if num_layers == 2:
        assert net.layers[1].input_size == (proj or 6) and net.layers[1].name == "l1"
    x = _rnn_input(batch_first)
    want = _forward(model, x)
    np.testing.assert_allclose(run_float(net, x, torch_layout=True), want, atol=ATOL)
    # the IR's own convention is batch-first in and out
    xb = x if batch_first else x.transpose(0, 1)
    wantb = want if batch_first else want.transpose(1, 0, 2)
    np.testing.assert_allclose(run_float(net, xb), wantb, atol=ATOL)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_gru_matches_torch(num_layers, batch_first, bias):
    _seed(num_layers)
    model = nn.GRU(4, 5, num_layers=num_layers, batch_first=batch_first, bias=bias)
    net = import_model(model)
    assert len(net.layers) == num_layers and all(isinstance(l, GRU) for l in net.layers)
    assert net.layers[0].w_ih.shape == (15, 4) and net.layers[0].w_hh.shape == (15, 5)
    x = _rnn_input(batch_first)
    np.testing.assert_allclose(run_float(net, x, torch_layout=True), _forward(model, x), atol=ATOL)


def test_gru_gate_order_pinned():
    """Only the n gate's recurrent bias sits inside r * (...): moving it changes the output."""
    _seed(3)
    model = nn.GRU(2, 3)
    with torch.no_grad():
        model.bias_hh_l0.zero_()
        model.bias_hh_l0[6:] = 2.0          # b_hn
    net = import_model(model)
    x = _rnn_input(False, F=2)
    np.testing.assert_allclose(run_float(net, x, torch_layout=True), _forward(model, x), atol=ATOL)


@pytest.mark.parametrize("name", ["clf_lstm", "clf_gru"])
def test_classifier_matches_torch(name):
    model = _models()[name]
    net = import_model(model)
    assert net.kind == "rnn" and net.head_on_last_step
    assert isinstance(net.layers[0], (LSTM, GRU)) and isinstance(net.layers[-1], Dense)
    assert net.layers[-1].name.startswith("head")
    assert len(net.rnn_layers) == 1 and net.head_layers
    x = _rnn_input(model.rnn.batch_first)
    want = _forward(model, x)
    assert want.shape == (3, net.output_features)
    np.testing.assert_allclose(run_float(net, x, torch_layout=True), want, atol=ATOL)
    xb = x if model.rnn.batch_first else x.transpose(0, 1)
    np.testing.assert_allclose(run_float(net, xb), want, atol=ATOL)


def test_input_shape_checked():
    net = import_model(_mlp(), input_shape=(2, 6))
    assert net.input_shape == (2, 6)
    with pytest.raises(ModelError, match="input_shape.*features = 6"):
        import_model(_mlp(), input_shape=(2, 5))
    import_model(nn.GRU(4, 5), input_shape=(7, 2, 4))
    with pytest.raises(ModelError, match=r"\(time, batch, features\)"):
        import_model(nn.GRU(4, 5), input_shape=(7, 3))


# ----------------------------------------------------------------------- loading

@pytest.mark.parametrize("name", list(_models()))
def test_round_trip(tmp_path, name):
    model = _models()[name]
    path = tmp_path / f"{name}.pt"
    torch.save(model, path)
    loaded = load_model(path)
    assert type(loaded) is type(model)
    a, b = import_model(model), import_model(loaded)
    assert (a.kind, a.batch_first, a.head_on_last_step) == (b.kind, b.batch_first, b.head_on_last_step)
    if a.kind == "mlp":
        x = torch.randn(2, a.input_features)
    else:
        x = _rnn_input(a.batch_first)
    np.testing.assert_allclose(run_float(b, x, torch_layout=True), _forward(model, x), atol=ATOL)
    np.testing.assert_allclose(_forward(loaded, x), _forward(model, x), atol=0)


def test_allow_list_is_minimal_and_sufficient(tmp_path):
    """A saved supported model names no global outside SAFE_CLASSES + torch's own allow-list."""
    ours = {f"{c.__module__}.{c.__qualname__}" for c in SAFE_CLASSES}
    seen = set()
    for name, model in _models().items():
        path = tmp_path / f"{name}.pt"
        torch.save(model, path)
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        assert unsafe <= ours, unsafe - ours
        seen |= unsafe
    assert seen == ours          # and every entry is needed by some supported model


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvilModule(nn.Module):
    def __init__(self, marker):
        super().__init__()
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        os.system("echo pwned")
        return self.fc(x)


def test_malicious_pickle_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    # os.system payload, alone and hidden inside an allowed module's attributes
    torch.save(_Evil(marker), tmp_path / "evil.pt")
    lin = nn.Linear(2, 2)
    lin.extra = _Evil(marker)
    torch.save(lin, tmp_path / "evil_inside.pt")
    torch.save(_EvilModule(marker), tmp_path / "evil_module.pt")
    with pytest.raises(ModelError, match=r"evil\.pt contains class '(posix|nt)\.system', which circa "
                                         r"cannot load safely.*supported: nn\.Linear"):
        load_model(tmp_path / "evil.pt")
    with pytest.raises(ModelError, match=r"'(posix|nt)\.system'"):
        load_model(tmp_path / "evil_inside.pt")
    with pytest.raises(ModelError, match=r"'builtins\.open'|'io\.open'"):
        load_model(tmp_path / "evil_module.pt")
    assert not marker.exists()
    # sanity: the payload is real (a plain unpickle would have run it)
    import pickle
    pickle.loads(pickle.dumps(_Evil(marker)))
    assert marker.exists()


def test_custom_module_class_rejected(tmp_path):
    torch.save(MyNet(), tmp_path / "mynet.pt")
    with pytest.raises(ModelError, match=r"mynet\.pt contains class '[\w.]*MyNet', which circa cannot "
                                         r"load safely.*save an nn\.Sequential.*docs/compiler\.md"):
        load_model(tmp_path / "mynet.pt")


def test_unsupported_torch_layer_in_file(tmp_path):
    torch.save(nn.Sequential(nn.Linear(2, 2), nn.Conv1d(1, 1, 1)), tmp_path / "conv.pt")
    with pytest.raises(ModelError, match=r"'torch\.nn\.modules\.conv\.Conv1d' \(nn\.Conv1d\), which "
                                         r"circa does not support; supported: "):
        load_model(tmp_path / "conv.pt")


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(ModelError, match="is a directory"):
        load_model(tmp_path)
    (tmp_path / "text.pt").write_text("hello, not a model\n" * 10)
    with pytest.raises(ModelError, match=r"text\.pt is not a model file written by torch\.save"):
        load_model(tmp_path / "text.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelError, match="not a model file"):
        load_model(tmp_path / "empty.pt")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("x.txt", "hi")
    with pytest.raises(ModelError, match="not a model file"):
        load_model(tmp_path / "other.zip")
    torch.save(nn.Linear(2, 2), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(ModelError, match="legacy"):
        load_model(tmp_path / "legacy.pt")


def test_state_dict_rejected(tmp_path):
    torch.save(_mlp().state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ModelError, match="state_dict.*save the module, not its state_dict"):
        load_model(tmp_path / "sd.pt")
    torch.save({"epoch": 3, "model": _mlp()}, tmp_path / "ckpt.pt")
    with pytest.raises(ModelError, match="contains a dict.*torch.save\\(model, path\\)"):
        load_model(tmp_path / "ckpt.pt")
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(ModelError, match="contains a Tensor, not a model"):
        load_model(tmp_path / "t.pt")


def test_torchscript_rejected(tmp_path):
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), tmp_path / "ts.pt")
    with pytest.raises(ModelError, match="TorchScript"):
        load_model(tmp_path / "ts.pt")


# ------------------------------------------------------------------ import errors

@pytest.mark.parametrize("model, match", [
    (nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Conv1d(1, 1, 1)),
     r"layer '2' \(model\[2\]\) is nn\.Conv1d, which circa does not support; supported: nn\.Linear"),
    (nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Tanh())),
     r"layer '1\.0' \(model\[1\]\[0\]\) is nn\.Tanh"),
    (nn.Sequential(nn.Linear(2, 2), nn.Dropout()), r"layer '1' \(model\[1\]\) is nn\.Dropout"),
    (nn.RNN(3, 4), r"the model is nn\.RNN"),
    (nn.LSTM(3, 4, bidirectional=True), r"bidirectional nn\.LSTM.*bidirectional=True"),
    (RNNClassifier(nn.GRU(3, 4, bidirectional=True), nn.Linear(8, 2)),
     r"layer 'rnn' \(model\.rnn\) is a bidirectional nn\.GRU"),
    (RNNClassifier(nn.GRU(3, 4), nn.Sequential(nn.Linear(4, 4), nn.Sigmoid())),
     r"layer 'head\.1' \(model\.head\[1\]\) is nn\.Sigmoid"),
    (MyNet(), r"the model is [\w.]*MyNet"),
    (nn.Sequential(nn.LSTM(3, 4), nn.Linear(4, 2)), r"inside nn\.Sequential.*RNNClassifier\(rnn, head\)"),
    (nn.Sequential(RNNClassifier(nn.GRU(3, 4), nn.Linear(4, 2))), r"RNNClassifier must be the whole model"),
    (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)),
     r"layer '1' \(model\[1\]\) \(nn\.Linear\) expects 5 input features but receives 4"),
    (RNNClassifier(nn.LSTM(3, 4, proj_size=2), nn.Linear(4, 2)), r"layer 'head' .*expects 4.*receives 2"),
    (nn.Sequential(nn.ReLU()), r"no nn\.Linear, nn\.LSTM or nn\.GRU"),
    (nn.Sequential(), r"empty nn\.Sequential"),
])
def test_unsupported_modules(model, match):
    with pytest.raises(ModelError, match=match):
        import_model(model)


def test_subclass_of_supported_layer_rejected():
    class MyLinear(nn.Linear):
        pass
    with pytest.raises(ModelError, match=r"layer '0' \(model\[0\]\) is [\w.<>]*MyLinear"):
        import_model(nn.Sequential(MyLinear(2, 2)))


def test_hooks_rejected():
    model = _mlp()
    model[0].register_forward_hook(lambda m, i, o: o * 2)
    with pytest.raises(ModelError, match=r"layer '0' \(model\[0\]\) \(nn\.Linear\) has forward hooks"):
        import_model(model)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_weights(bad):
    model = _mlp()
    with torch.no_grad():
        model[2][0].weight[1, 1] = bad
    with pytest.raises(ModelError, match=r"parameter '2\.0\.weight' \(model\[2\]\[0\]\.weight\) "
                                         r"contains (NaN|infinite)"):
        import_model(model)
    clf = RNNClassifier(nn.LSTM(3, 4, num_layers=2), nn.Linear(4, 2))
    with torch.no_grad():
        clf.rnn.bias_hh_l1[0] = bad
    with pytest.raises(ModelError, match=r"parameter 'rnn\.bias_hh_l1' \(model\.rnn\.bias_hh_l1\)"):
        import_model(clf)


def test_not_a_module():
    with pytest.raises(ModelError, match="expected a torch.nn.Module"):
        import_model({"weight": torch.zeros(2, 2)})


def test_rnnclassifier_constructor_checks():
    with pytest.raises(ModelError, match="rnn must be nn.LSTM or nn.GRU"):
        RNNClassifier(nn.RNN(2, 2), nn.Linear(2, 2))
    with pytest.raises(ModelError, match="head must be"):
        RNNClassifier(nn.GRU(2, 2), nn.ReLU())


def test_network_is_plain_data():
    net = import_model(nn.Linear(3, 2))
    assert isinstance(net, Network) and net.layers[0].name == "model" and net.source == "Linear"
    with pytest.raises(AttributeError):
        net.layers[0].name = "x"
    assert repr(net.layers[0]) == "Dense(name='model', weight=<2x3>, bias=<2>)"
    with pytest.raises(ValueError, match="3 features"):
        run_float(net, np.zeros((2, 4)))
