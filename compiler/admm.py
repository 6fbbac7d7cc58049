"""ADMM-regularised training toward structured weights (ADMM-NN, E-RNN).

Compressing a trained model by one-shot projection (nearest block-circulant or
block-sparse matrix) throws away much of what it learned; ADMM instead moves
the weights gradually toward the constraint set while training.  For each
constrained parameter ``W`` with Euclidean projection ``P`` onto its set
``S``, the problem ``min loss(W) s.t. W in S`` is split as
``min loss(W) + indicator_S(Z) s.t. W = Z`` and solved in scaled form:

* W-step: a few epochs of Adam on ``loss(W) + rho/2 * ||W - Z + U||^2``;
* Z-step: ``Z = P(W + U)``;
* U-step: ``U = U + W - Z``;
* ``rho`` grows geometrically each round (``U`` is rescaled by
  ``rho_old / rho_new`` so the unscaled dual ``rho * U`` is unchanged).

Finally every constrained ``W`` is hard-projected, ``W = P(W)``, so the
returned model lies exactly in the constraint set.  Fine-tune afterwards in
the structured parametrisation (``CirculantLinear`` / ``SparseLinear``) to
recover the last bit of accuracy, as ADMM-NN does.

The code is generic: any ``nn.Module``, parameters addressed by their
``named_parameters()`` names, any projection callable (e.g. per-gate
projections of LSTM/GRU weights).  Without labels it *distils*: the loss is
the MSE between the model's outputs and the original (teacher) model's
outputs on the calibration inputs.

On digits, ADMM alone leaves block-circulant k = 8 far from the float accuracy; the
compiler follows it with projected fine-tuning (``compress.recover``). Figures come
from ``circa bench-accuracy`` (docs/benchmarks.md).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from . import circulant
from .sparse import Scheme, parse_scheme, prune_blocks
from .train import deterministic

__all__ = [
    "circulant_projection",
    "sparse_projection",
    "linear_projections",
    "admm",
]


def circulant_projection(k):
    """Euclidean projection onto block-circulant matrices with block size ``k``.

    Parameters
    ----------
    k : int
        Block size, one of :data:`~circa.compiler.circulant.ALLOWED_K`.

    Returns
    -------
    callable
        ``P(W) = expand(project(W, k), out, in)`` for ``W`` of shape
        (out_features, in_features) (tensor in, tensor out, same dtype).
    """
    k = circulant.check_k(k)

    def project(weight):
        return circulant.expand(circulant.project(weight, k), *weight.shape)

    project.__qualname__ = f"circulant_projection({k})"
    return project


def sparse_projection(r, c, density):
    """Euclidean projection onto matrices with at most ``n_keep`` nonzero blocks.

    Parameters
    ----------
    r, c : int
        Block shape.
    density : float
        Fraction of blocks kept, ``0 < density <= 1``.

    Returns
    -------
    callable
        ``P(W)`` keeps the ``ceil(density * p * q)`` ``r x c`` blocks of
        largest Frobenius norm (see :func:`~circa.compiler.sparse.prune_blocks`)
        and zeroes the rest; ``W`` of shape (out_features, in_features).
    """
    prune_blocks(torch.zeros(r, c), r, c, density)  # validate the arguments now

    def project(weight):
        mask = torch.as_tensor(prune_blocks(weight, r, c, density), device=weight.device)
        m = mask.repeat_interleave(r, 0).repeat_interleave(c, 1)[: weight.shape[0], : weight.shape[1]]
        return weight * m

    project.__qualname__ = f"sparse_projection({r}, {c}, {density})"
    return project


def linear_projections(model, scheme):
    """Projections for the weight of every ``nn.Linear`` in ``model``.

    Parameters
    ----------
    model : torch.nn.Module
    scheme : str or Scheme
        E.g. ``"circulant:8"`` or ``"sparse:4x4:0.25"`` (see
        :func:`~circa.compiler.sparse.parse_scheme`).

    Returns
    -------
    dict of str to callable
        ``{"0.weight": P, "2.weight": P, ...}`` keyed like
        ``model.named_parameters()``; empty for ``"dense"``.
    """
    if not isinstance(scheme, Scheme):
        scheme = parse_scheme(scheme)
    if scheme.kind == "dense":
        return {}
    proj = (circulant_projection(scheme.k) if scheme.kind == "circulant"
            else sparse_projection(scheme.r, scheme.c, scheme.density))
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            out[f"{name}.weight" if name else "weight"] = proj
    return out


def _apply(projection, weight, name):
    """Run ``projection`` on a detached copy of ``weight`` and check the result."""
    z = projection(weight.detach().clone())
    if not torch.is_tensor(z) or z.shape != weight.shape:
        raise ValueError(
            f"projection for {name!r} must return a tensor of shape {tuple(weight.shape)}, "
            f"got {type(z).__name__} {tuple(getattr(z, 'shape', ()))}")
    return z.to(dtype=weight.dtype, device=weight.device)


def admm(model, projections, x, y=None, *, loss_fn=None, teacher=None, rounds=12,
         epochs_per_round=3, rho=1e-2, rho_growth=1.5, lr=1e-2, batch_size=128, seed=0,
         progress=None):
    """ADMM training toward structured weights, then hard projection.

    Parameters
    ----------
    model : torch.nn.Module
        Trained model; not modified.
    projections : dict of str to callable
        Parameter name (as in ``model.named_parameters()``) to its Euclidean
        projection ``P``: tensor -> tensor of the same shape, e.g. from
        :func:`circulant_projection`, :func:`sparse_projection` or
        :func:`linear_projections`.  Other parameters train freely.
    x : torch.Tensor, shape (n, ...)
        Training (or calibration) inputs, samples along dim 0.
    y : torch.Tensor, shape (n, ...), optional
        Targets.  Without ``y`` the model is distilled: the targets are the
        teacher's outputs on ``x`` (computed once, in eval mode).
    loss_fn : callable, optional
        ``loss_fn(outputs, targets) -> scalar``; default cross-entropy with
        labels, MSE when distilling.
    teacher : torch.nn.Module, optional
        Teacher for distillation; default the original ``model``.  Ignored
        when ``y`` is given.
    rounds : int, default 12
        ADMM rounds (W-, Z-, U-step each).
    epochs_per_round : int, default 3
        Passes over ``x`` in each W-step.
    rho : float, default 1e-2
        Penalty in round 0; round ``t`` uses ``rho * rho_growth**t`` (0.86
        in the last of 12 rounds by default).  The defaults were tuned on the
        digits MLP (cross-entropy or logit MSE, 9.5k weights); the penalty
        must end up dominating the loss, so scale ``rho`` with the loss.
    rho_growth : float, default 1.5
        Must be >= 1.
    lr : float, default 1e-2
        Adam learning rate (one optimizer for the whole run).
    batch_size : int, default 128
    seed : int, default 0
        Seeds the shuffling; training is deterministic (single thread).
    progress : callable, optional
        Called after each round with a dict: ``round``, ``rounds``, ``rho``,
        ``loss`` (mean task loss of the round's last epoch) and ``residual``
        (``sqrt(sum ||W - Z||^2 / sum ||W||^2)`` over constrained parameters).

    Returns
    -------
    torch.nn.Module
        Trained deep copy of ``model`` in eval mode; each constrained
        parameter equals ``P(W)`` exactly (it lies in its constraint set).

    Raises
    ------
    ValueError
        For unknown parameter names, non-callable projections, bad schedule
        arguments, mismatched ``x``/``y`` lengths, or a projection returning
        the wrong shape.
    """
    named = dict(model.named_parameters())
    unknown = sorted(set(projections) - set(named))
    if unknown:
        raise ValueError(f"projections name unknown parameters {unknown}; "
                         f"the model has {sorted(named)}")
    bad = sorted(n for n, p in projections.items() if not callable(p))
    if bad:
        raise ValueError(f"projections for {bad} are not callable; pass functions tensor -> tensor")
    for what, value, ok in (("rounds", rounds, lambda v: v >= 1),
                            ("epochs_per_round", epochs_per_round, lambda v: v >= 1),
                            ("batch_size", batch_size, lambda v: v >= 1)):
        if isinstance(value, bool) or not isinstance(value, int) or not ok(value):
            raise ValueError(f"{what}={value!r} is invalid; use a positive integer")
    if not (math.isfinite(rho) and rho > 0 and math.isfinite(rho_growth) and rho_growth >= 1):
        raise ValueError(f"rho={rho!r}, rho_growth={rho_growth!r} are invalid; "
                         "use rho > 0 and rho_growth >= 1")
    if y is not None and len(y) != len(x):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}; pass matching inputs and targets")

    student = copy.deepcopy(model)
    if y is None:
        teacher = model if teacher is None else teacher
        was_training = teacher.training
        teacher.eval()
        with torch.no_grad():
            targets = teacher(x).detach()
        teacher.train(was_training)
        loss_fn = nn.functional.mse_loss if loss_fn is None else loss_fn
    else:
        targets = y
        loss_fn = nn.functional.cross_entropy if loss_fn is None else loss_fn

    params = dict(student.named_parameters())
    constrained = {n: params[n] for n in projections}
    with torch.no_grad():
        z = {n: _apply(projections[n], w, n) for n, w in constrained.items()}
        u = {n: torch.zeros_like(w) for n, w in constrained.items()}

    with deterministic(seed):
        opt = torch.optim.Adam(student.parameters(), lr=lr)
        for t in range(rounds):
            rho_t = rho * rho_growth ** t
            if t:  # keep the unscaled dual rho * U fixed when rho changes
                for n in u:
                    u[n].mul_(1.0 / rho_growth)
            student.train()
            for _ in range(epochs_per_round):
                perm = torch.randperm(len(x))
                total = 0.0
                for start in range(0, len(x), batch_size):
                    idx = perm[start:start + batch_size]
                    opt.zero_grad()
                    task = loss_fn(student(x[idx]), targets[idx])
                    penalty = sum(((w - z[n] + u[n]) ** 2).sum() for n, w in constrained.items())
                    (task + 0.5 * rho_t * penalty).backward()
                    opt.step()
                    total += task.item() * len(idx)
            with torch.no_grad():
                num = den = 0.0
                for n, w in constrained.items():
                    z[n] = _apply(projections[n], w + u[n], n)
                    u[n] += w - z[n]
                    num += float(((w - z[n]) ** 2).sum())
                    den += float((w ** 2).sum())
            if progress is not None:
                progress({"round": t, "rounds": rounds, "rho": rho_t, "loss": total / len(x),
                          "residual": math.sqrt(num / den) if den else 0.0})

    with torch.no_grad():
        for n, w in constrained.items():
            w.copy_(_apply(projections[n], w, n))
    student.eval()
    return student
