"""Tiny reference workload: scikit-learn's 8x8 digits with an MLP.

The data set ships inside scikit-learn (no download).  Used as an end-to-end
example and test case: train a float MLP, convert its layers to
:class:`~circa.compiler.circulant.CirculantLinear` and fine-tune.

Accuracy figures come from commands: ``circa demo`` (the MLP through the RTL) and
``circa bench-accuracy`` (every model and scheme); see docs/benchmarks.md.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from . import train
from .circulant import CirculantLinear

__all__ = ["load", "train_mlp", "accuracy", "to_circulant", "fit", "load_sequences",
           "train_rnn"]


_deterministic = train.deterministic


def load(seed=0):
    """Load the digits data set with a deterministic stratified 75/25 split.

    Parameters
    ----------
    seed : int, default 0
        ``random_state`` of the split.

    Returns
    -------
    x_train : torch.Tensor, float32, shape (1347, 64)
        Pixels scaled to [0, 1] (raw values 0..16 divided by 16), row-major 8x8.
    y_train : torch.Tensor, int64, shape (1347,)
        Labels 0..9.
    x_test : torch.Tensor, float32, shape (450, 64)
    y_test : torch.Tensor, int64, shape (450,)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=seed)
    return (torch.from_numpy(x_tr), torch.from_numpy(y_tr),
            torch.from_numpy(x_te), torch.from_numpy(y_te))


def accuracy(model, x, y):
    """Classification accuracy.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (n, 64) float32 inputs to (n, 10) logits.
    x : torch.Tensor, float32, shape (n, 64)
    y : torch.Tensor, int64, shape (n,)

    Returns
    -------
    float
        Fraction of correct arg-max predictions, in [0, 1].
    """
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(-1) == y).float().mean().item()


def fit(model, x, y, epochs, lr=1e-2, batch_size=128, seed=0):
    """Train ``model`` in place with Adam and cross-entropy (mini-batch, shuffled).

    Parameters
    ----------
    model : torch.nn.Module
    x : torch.Tensor, float32, shape (n, 64)
    y : torch.Tensor, int64, shape (n,)
    epochs : int
        Passes over the data.
    lr : float, default 1e-2
    batch_size : int, default 128
    seed : int, default 0
        Seeds the shuffling; training is deterministic (single thread).

    Returns
    -------
    torch.nn.Module
        ``model`` itself.
    """
    train.fit(model, x, y, nn.functional.cross_entropy, epochs, lr=lr, batch_size=batch_size,
              seed=seed)
    return model


def train_mlp(hidden=128, epochs=30, seed=0):
    """Train a float MLP ``64 -> hidden -> 10`` on the digits training split.

    Parameters
    ----------
    hidden : int, default 128
    epochs : int, default 30
    seed : int, default 0
        Seeds initialisation, shuffling and the data split (via :func:`load`).

    Returns
    -------
    torch.nn.Sequential
        ``Sequential(Linear(64, hidden), ReLU(), Linear(hidden, 10))``,
        float32, in eval mode.  Measured test accuracy: see module docstring.
    """
    x, y, _, _ = load(seed)
    with _deterministic(seed):
        model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    return fit(model, x, y, epochs, seed=seed)


def to_circulant(model, k, epochs=20, x=None, y=None, lr=3e-2, seed=0):
    """Replace every ``nn.Linear`` by a projected block-circulant layer and fine-tune.

    Each layer becomes ``CirculantLinear.from_linear(layer, k)`` (the
    Frobenius-nearest block-circulant weight), then the whole model is trained
    for ``epochs`` epochs ("recovery training") in the circulant
    parametrisation.  ``model`` itself is not modified.

    Parameters
    ----------
    model : torch.nn.Module
        E.g. the output of :func:`train_mlp`.
    k : int
        Block size, one of 2, 4, 8, 16, 32, 64.
    epochs : int, default 20
        Recovery epochs; 0 returns the bare projection.
    x : torch.Tensor, float32, shape (n, 64), optional
        Training inputs; default: the training split of ``load(seed)``.
    y : torch.Tensor, int64, shape (n,), optional
        Training labels (required if ``x`` is given).
    lr : float, default 3e-2
    seed : int, default 0

    Returns
    -------
    torch.nn.Module
        Deep copy of ``model`` with circulant layers, in eval mode.  Measured
        test accuracy: see module docstring.
    """
    if (x is None) != (y is None):
        raise ValueError("pass both x and y (training inputs and labels) or neither")
    if x is None:
        x, y, _, _ = load(seed)
    new = copy.deepcopy(model)

    def replace(module):
        for name, child in module.named_children():
            if isinstance(child, nn.Linear):
                setattr(module, name, CirculantLinear.from_linear(child, k))
            else:
                replace(child)

    if isinstance(new, nn.Linear):
        new = CirculantLinear.from_linear(new, k)
    else:
        replace(new)
    if epochs:
        fit(new, x, y, epochs, lr=lr, seed=seed)
    new.eval()
    return new


def load_sequences(seed=0):
    """The digits split of :func:`load` as 8-step sequences of 8 pixels (time = image row).

    Parameters
    ----------
    seed : int, default 0
        ``random_state`` of the split (same split as :func:`load`).

    Returns
    -------
    x_train : torch.Tensor, float32, shape (1347, 8, 8)
        ``x_train[n, t]`` is row ``t`` of image ``n``, pixels in [0, 1].
    y_train : torch.Tensor, int64, shape (1347,)
    x_test : torch.Tensor, float32, shape (450, 8, 8)
    y_test : torch.Tensor, int64, shape (450,)
    """
    x_tr, y_tr, x_te, y_te = load(seed)
    return x_tr.reshape(-1, 8, 8), y_tr, x_te.reshape(-1, 8, 8), y_te


def train_rnn(kind="lstm", hidden=64, proj_size=0, epochs=40, lr=1e-2, seed=0):
    """Train a float RNN classifier on the row sequences of :func:`load_sequences`.

    Parameters
    ----------
    kind : {"lstm", "gru"}
    hidden : int, default 64
    proj_size : int, default 0
        LSTM projection size (0: none; GRU: must be 0).
    epochs : int, default 40
    lr : float, default 1e-2
    seed : int, default 0
        Seeds initialisation, shuffling and the data split.

    Returns
    -------
    RNNClassifier
        ``RNNClassifier(nn.LSTM(8, hidden, batch_first=True, proj_size=proj_size),
        nn.Linear(proj_size or hidden, 10))`` (or ``nn.GRU``), float32, eval mode.
        Measured (seed 0, 40 epochs): see ``docs/benchmarks.md``, "Accuracy on digits".
    """
    from .frontend import RNNClassifier

    if kind not in ("lstm", "gru"):
        raise ValueError(f"kind={kind!r} is invalid; use 'lstm' or 'gru'")
    if kind == "gru" and proj_size:
        raise ValueError("nn.GRU has no projection; use proj_size=0 for kind='gru'")
    x, y, _, _ = load_sequences(seed)
    with _deterministic(seed):
        if kind == "lstm":
            rnn = nn.LSTM(8, hidden, batch_first=True, proj_size=proj_size)
        else:
            rnn = nn.GRU(8, hidden, batch_first=True)
        model = RNNClassifier(rnn, nn.Linear(proj_size or hidden, 10))
    return fit(model, x, y, epochs, lr=lr, seed=seed)
