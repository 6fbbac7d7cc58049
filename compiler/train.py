"""Shared training loop: deterministic, mini-batch Adam."""
from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def deterministic(seed):
    """Seed torch and run single-threaded (restoring the thread count after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


def fit(model, x, targets, loss_fn, epochs, *, lr=1e-2, batch_size=128, seed=0,
        after_step=None):
    """Train ``model`` in place: shuffled mini-batches, Adam, ``loss_fn(outputs, targets)``;
    ``after_step()`` runs after every optimiser step (e.g. a projection). Eval mode after."""
    with deterministic(seed):
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for start in range(0, len(x), batch_size):
                idx = perm[start:start + batch_size]
                opt.zero_grad()
                loss_fn(model(x[idx]), targets[idx]).backward()
                opt.step()
                if after_step is not None:
                    after_step()
    model.eval()
    return model
