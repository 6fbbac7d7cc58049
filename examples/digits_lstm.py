"""Example: an LSTM classifier on scikit-learn's digits, from training to bit-exact RTL.

    .venv/bin/python examples/digits_lstm.py [OUT_DIR]

Trains an RNNClassifier (LSTM with projection + Linear head) on the digits images as
8 time steps of 8 pixels, saves it with torch.save, then does what a user does with the
command line: ``circa compile`` (block-circulant k = 8, 16 bits) and ``circa sim``
(Verilator, every output word checked against the golden model).
"""
import sys
from pathlib import Path

import numpy as np
import torch

from circa.compiler import digits
from circa.compiler.compile import compile_model
from circa.sim.simulate import simulate

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/digits_lstm")
out.mkdir(parents=True, exist_ok=True)
x_train, y_train, x_test, y_test = digits.load_sequences()
model = digits.train_rnn("lstm", hidden=64, proj_size=32)
torch.save(model, out / "model.pt")
np.savez(out / "train.npz", x=x_train.numpy(), y=y_train.numpy())
np.save(out / "test_x.npy", x_test.numpy())

report = compile_model(out / "model.pt", out / "program", train=out / "train.npz",
                       scheme="circulant:8", k=8, lanes=4)
print(f"compiled: {report['instructions']} instructions; layers:",
      ", ".join(f"{l['layer']} {l['scheme']} {l['compression']}x" for l in report["layers"]))
result = simulate(out / "program", out / "test_x.npy", out / "test_y.npy")
accuracy = (np.load(out / "test_y.npy").argmax(-1) == y_test.numpy()).mean()
print(f"bit-exact: {result['bit_exact']} over {result['samples']} images, "
      f"{result['cycles_per_inference']:.0f} cycles per inference, RTL accuracy {accuracy:.2%}")
