"""``circa compile``: from a saved model file to a Program directory, and its errors."""
import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from circa.cli import main
from circa.compiler import executor, frontend
from circa.compiler.program import Program


@pytest.fixture
def files(tmp_path):
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(32, 48), nn.ReLU(), nn.Linear(48, 10))
    lstm = frontend.RNNClassifier(nn.LSTM(8, 32, batch_first=True, proj_size=16), nn.Linear(16, 4))
    torch.save(mlp, tmp_path / "mlp.pt")
    torch.save(lstm, tmp_path / "lstm.pt")
    torch.save(nn.Sequential(nn.Conv1d(1, 1, 3)), tmp_path / "conv.pt")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "flat.npy", rng.normal(size=(64, 32)))
    np.save(tmp_path / "seq.npy", rng.normal(size=(64, 5, 8)))
    np.savez(tmp_path / "flat.npz", x=rng.normal(size=(64, 32)), y=rng.integers(0, 10, 64))
    return tmp_path


def test_compile_mlp_writes_a_complete_program(files, capsys):
    out = files / "prog"
    assert main(["compile", str(files / "mlp.pt"), "-o", str(out), "--train",
                 str(files / "flat.npz"), "--k", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [l["scheme"] for l in report["layers"]] == ["circulant:8", "dense"]
    assert report["layers"][0]["compression"] == 8.0
    for name in ("program.bin", "program.asm", "circulant_weights.npy", "scratchpad.npy",
                 "compressed.pt", "report.json", "program.json"):
        assert (out / name).is_file()
    program = Program.load(out)
    compressed = torch.load(out / "compressed.pt", weights_only=False)
    x = np.load(files / "flat.npy")
    y = program.output
    got = executor.run(program, x).numpy() * 2.0 ** -y.frac
    assert np.abs(got - compressed(torch.as_tensor(x, dtype=torch.float32)).detach().numpy()).max() < 0.05


def test_compile_lstm_with_scheme_file(files, capsys):
    (files / "schemes.toml").write_text('[layers]\n"rnn.l0" = "sparse:4x4:0.5"\n')
    assert main(["compile", str(files / "lstm.pt"), "-o", str(files / "p"), "--calib",
                 str(files / "seq.npy"), "--scheme-file", str(files / "schemes.toml"),
                 "--k", "8", "--no-train", "--bits", "12", "--vector-width", "2"]) == 0
    text = capsys.readouterr().out
    assert "sparse:4x4:0.5" in text and "12 bits" in text
    assert "LOOP n=5" in (files / "p" / "program.asm").read_text()
    assert Program.load(files / "p").config.vector_words == 2


@pytest.mark.parametrize("args, message", [
    (["conv.pt", "--calib", "flat.npy"], "nn.Conv1d"),
    (["mlp.pt"], "needs sample inputs for calibration"),
    (["mlp.pt", "--calib", "seq.npy"], r"--calib has shape \(64, 5, 8\); the model takes \(n, 32\)"),
    (["mlp.pt", "--calib", "flat.npy", "--bits", "20"], "--bits must be an integer from 8 to 18"),
    (["mlp.pt", "--calib", "flat.npy", "--vector-width", "3"],
     r"vector_width \(--vector-width\) must be a power of 2 from 1 to k = 16 \(None: k\), not 3"),
    (["mlp.pt", "--calib", "flat.npy", "--scheme", "circulant:3"], "circulant"),
    (["mlp.pt", "--calib", "flat.npy", "--scheme", "circulant:8"],
     "does not match the accelerator's block size k = 16"),
    (["missing.pt", "--calib", "flat.npy"], "missing.pt"),
])
def test_bad_input_exits_2_and_writes_nothing(files, capsys, args, message):
    argv = ["compile", str(files / args[0]), "-o", str(files / "never")]
    argv += [str(files / a) if a.endswith((".npy", ".npz")) else a for a in args[1:]]
    assert main(argv + ["--no-train"]) == 2
    assert re.search(message, " ".join(capsys.readouterr().err.split()))
    assert not (files / "never").exists()


def test_nan_weights_are_refused(files, capsys):
    model = nn.Sequential(nn.Linear(4, 4))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    torch.save(model, files / "nan.pt")
    np.save(files / "x4.npy", np.zeros((8, 4)))
    assert main(["compile", str(files / "nan.pt"), "-o", str(files / "never"), "--calib",
                 str(files / "x4.npy")]) == 2
    assert re.search("NaN|infinite", capsys.readouterr().err)
