"""Compiler front end: load a PyTorch model safely and import it into circa's layer list.

Loading
-------
:func:`load_model` reads a file written by ``torch.save(model, path)`` (the whole
module, not its ``state_dict``). It unpickles with ``torch.load(weights_only=True)``
and an allow-list of exactly the classes circa supports (:data:`SAFE_CLASSES`), so
nothing in the file is ever run: a file naming any other class or function is
rejected before that class is looked up, let alone called. Tensors, ``Parameter``,
``OrderedDict`` and ``set``, which a saved module also contains, are on torch's own
built-in ``weights_only`` allow-list.

Supported models
----------------
* ``nn.Linear`` (with or without bias), ``nn.ReLU``, and ``nn.Sequential`` of those
  (nested ``Sequential`` s are flattened) -- an MLP, ``Network.kind == "mlp"``.
* ``nn.LSTM`` and ``nn.GRU``: any ``num_layers``, ``bias`` either way, ``batch_first``
  either way, LSTM ``proj_size`` 0 or > 0; unidirectional only. ``dropout`` is ignored
  (inference). The model's output is the output sequence (the first element of the
  tuple torch returns); the initial state is zero. ``Network.kind == "rnn"``.
* **Head convention**: :class:`RNNClassifier` ``(rnn, head)`` holds an ``nn.LSTM`` or
  ``nn.GRU`` (``self.rnn``) and an ``nn.Linear`` or ``nn.Sequential`` of Linear/ReLU
  (``self.head``); its forward applies the head to the RNN output at the *last time
  step*. Its IR is the RNN layers followed by the head layers, with
  ``Network.head_on_last_step = True``. This is the one supported way to put a
  classifier on an RNN (``nn.Sequential(rnn, ...)`` is rejected).

Anything else (another layer type, a custom module class, a bidirectional RNN,
``nn.RNN``, forward hooks) is a :class:`ModelError` naming the offending class and
where it is in the model.

The IR
------
:func:`import_model` returns a :class:`Network` whose ``layers`` are :class:`Dense`,
:class:`ReLU`, :class:`LSTM` and :class:`GRU` records holding float64 numpy copies of
the weights (read-only). Weight layouts and gate orders are torch's:

* ``Dense``: ``y = x @ weight.T + bias``, ``weight`` is ``(out, in)``.
* ``LSTM`` (gates stacked in the order **i, f, g, o**, ``w_ih`` ``(4H, in)``,
  ``w_hh`` ``(4H, P)`` with ``P = proj_size or H``, ``w_hr`` ``(P, H)`` or None)::

      i, f, g, o = split4(w_ih @ x + b_ih + w_hh @ h + b_hh)
      c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
      h' = sigmoid(o) * tanh(c')            (then h' = w_hr @ h' if proj_size)

* ``GRU`` (gates stacked in the order **r, z, n**, ``w_ih`` ``(3H, in)``,
  ``w_hh`` ``(3H, H)``)::

      r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
      z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
      n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
      h' = (1 - z) * n + z * h

  (a missing bias is zero; note ``b_hn`` sits inside ``r * (...)``).

:func:`run_float` evaluates the IR in float64. Its RNN input is always batch-first,
``(batch, time, features)``, and so is its output ``(batch, time, out)``; with a head
the output is ``(batch, out)``. ``Network.batch_first`` records the original model's
convention; ``run_float(..., torch_layout=True)`` takes and returns tensors in that
convention instead, i.e. exactly what the PyTorch model's forward takes and returns.
An MLP takes ``(..., in_features)``.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "ModelError", "RNNClassifier", "SAFE_CLASSES", "SUPPORTED",
    "Dense", "ReLU", "LSTM", "GRU", "Network",
    "load_model", "import_model", "run_float",
]


class ModelError(ValueError):
    """The model file or module is not something circa can compile (message says why and what to do)."""


SUPPORTED = ("nn.Linear, nn.ReLU, nn.Sequential of those, nn.LSTM, nn.GRU (unidirectional), "
             "and circa.compiler.frontend.RNNClassifier(rnn, head)")
_DOCS = "see docs/compiler.md, 'Supported models'"


class RNNClassifier(nn.Module):
    """An LSTM/GRU followed by a head applied to its output at the last time step.

    ``rnn`` is an ``nn.LSTM`` or ``nn.GRU`` (unidirectional); ``head`` an ``nn.Linear`` or
    an ``nn.Sequential`` of ``nn.Linear`` / ``nn.ReLU``. Input is the RNN's input
    (``(batch, time, features)`` if ``rnn.batch_first`` else ``(time, batch, features)``);
    output is ``head(rnn_output[last step])``, ``(batch, head_out)``.
    """

    def __init__(self, rnn: nn.Module, head: nn.Module):
        super().__init__()
        if type(rnn) not in (nn.LSTM, nn.GRU):
            raise ModelError(f"RNNClassifier: rnn must be nn.LSTM or nn.GRU, got {_cls_name(rnn)}")
        if type(head) not in (nn.Linear, nn.Sequential):
            raise ModelError(f"RNNClassifier: head must be nn.Linear or nn.Sequential of "
                             f"nn.Linear/nn.ReLU, got {_cls_name(head)}")
        self.rnn = rnn
        self.head = head

    def forward(self, x):
        out, _ = self.rnn(x)
        last = out[:, -1] if self.rnn.batch_first else out[-1]
        return self.head(last)


#: The allow-list given to ``torch.load(weights_only=True)``. Everything else a saved
#: module needs (tensor rebuild functions, storages, ``Parameter``, ``OrderedDict``,
#: ``set``) is on torch's built-in allow-list; ``tests/test_frontend.py`` checks it.
SAFE_CLASSES = (nn.Linear, nn.ReLU, nn.Sequential, nn.LSTM, nn.GRU, RNNClassifier)


# --------------------------------------------------------------------------------- IR

class _Layer:
    """Compact repr: arrays shown by shape."""

    def __repr__(self):
        parts = []
        for k, v in self.__dict__.items():
            if isinstance(v, np.ndarray):
                v = f"<{'x'.join(map(str, v.shape))}>"
            else:
                v = repr(v)
            parts.append(f"{k}={v}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, eq=False, repr=False)
class Dense(_Layer):
    """``y = x @ weight.T + bias``; ``weight`` ``(out, in)``, ``bias`` ``(out,)`` or None."""
    name: str
    weight: np.ndarray
    bias: np.ndarray | None

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True, eq=False, repr=False)
class ReLU(_Layer):
    name: str


@dataclass(frozen=True, eq=False, repr=False)
class LSTM(_Layer):
    """One stacked LSTM layer, torch layout, gate order i, f, g, o (see module docstring)."""
    name: str
    input_size: int
    hidden_size: int
    proj_size: int            # 0: no projection
    w_ih: np.ndarray          # (4H, input_size)
    w_hh: np.ndarray          # (4H, proj_size or H)
    b_ih: np.ndarray | None   # (4H,)
    b_hh: np.ndarray | None   # (4H,)
    w_hr: np.ndarray | None   # (proj_size, H) or None

    @property
    def out_features(self) -> int:
        return self.proj_size or self.hidden_size


@dataclass(frozen=True, eq=False, repr=False)
class GRU(_Layer):
    """One stacked GRU layer, torch layout, gate order r, z, n (see module docstring)."""
    name: str
    input_size: int
    hidden_size: int
    w_ih: np.ndarray          # (3H, input_size)
    w_hh: np.ndarray          # (3H, H)
    b_ih: np.ndarray | None   # (3H,)
    b_hh: np.ndarray | None   # (3H,)

    @property
    def out_features(self) -> int:
        return self.hidden_size


@dataclass
class Network:
    """A normalized model: ``layers`` run in order.

    ``kind`` is ``"mlp"`` (Dense/ReLU only) or ``"rnn"`` (LSTM/GRU layers, possibly
    followed by Dense/ReLU head layers when ``head_on_last_step``). ``batch_first`` is
    the original PyTorch model's input convention (True for an MLP); the IR itself is
    always batch-first.
    """
    kind: str
    layers: list
    input_features: int
    output_features: int
    batch_first: bool = True
    head_on_last_step: bool = False
    input_shape: tuple | None = None
    source: str = ""          # class name of the imported module, e.g. "Sequential"

    @property
    def rnn_layers(self) -> list:
        return [l for l in self.layers if isinstance(l, (LSTM, GRU))]

    @property
    def head_layers(self) -> list:
        return [l for l in self.layers if not isinstance(l, (LSTM, GRU))] if self.kind == "rnn" else []

    def reference(self, x, *, torch_layout: bool = False) -> np.ndarray:
        """Same as :func:`run_float` ``(self, x, torch_layout=...)``."""
        return run_float(self, x, torch_layout=torch_layout)


# ---------------------------------------------------------------------------- loading

def _cls_name(obj) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    if cls.__module__.startswith("torch.nn.modules."):
        return f"nn.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _allowed_names() -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in SAFE_CLASSES}


def _unsafe_globals(path: str) -> list[str]:
    """Classes/functions the file names that are on neither allow-list (static scan, best effort)."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:
        return []
    return sorted(set(found) - _allowed_names())


def load_model(path) -> nn.Module:
    """Load a model saved with ``torch.save(model, path)`` without running anything in the file.

    Only the classes in :data:`SAFE_CLASSES` (plus torch's own tensor-rebuilding
    allow-list) can be constructed. Raises :class:`ModelError` for a missing file, a
    file that is not a ``torch.save`` file, a ``state_dict`` instead of a module, and a
    file naming any other class or function.
    """
    path = os.fspath(path)
    fname = os.path.basename(path) or path
    if not os.path.exists(path):
        raise ModelError(f"model file '{path}' not found")
    if os.path.isdir(path):
        raise ModelError(f"model file '{path}' is a directory; give the .pt file written by "
                         f"torch.save(model, path)")
    if not hasattr(torch.serialization, "safe_globals"):   # torch < 2.5
        raise ModelError(f"loading models safely needs torch >= 2.5 (this is {torch.__version__})")
    is_zip = zipfile.is_zipfile(path)
    if is_zip and _is_torchscript(path):
        raise ModelError(_TORCHSCRIPT.format(fname=fname))
    try:
        with torch.serialization.safe_globals(list(SAFE_CLASSES)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if is_zip:
            names = _unsafe_globals(path)
            if not names:
                names = re.findall(r"GLOBAL ([\w.]+)", msg) or re.findall(r"got <class '([\w.]+)'>", msg)
            if names:
                what = "class" if len(names) == 1 else "classes"
                listed = ", ".join(f"'{n}'" + (f" (nn.{n.rsplit('.', 1)[1]})"
                                               if n.startswith("torch.nn.modules.") else "")
                                   for n in names)
                if all(n.startswith("torch.nn.modules.") for n in names):
                    why = "which circa does not support"
                else:
                    why = ("which circa cannot load safely (it only loads the supported classes "
                           "and never runs code from a model file)")
                raise ModelError(
                    f"{fname} contains {what} {listed}, {why}; supported: {SUPPORTED}; save an "
                    f"nn.Sequential of supported layers, or an RNNClassifier, with "
                    f"torch.save(model, path) ({_DOCS})") from None
            detail = msg.split("WeightsUnpickler error:")[-1].strip().splitlines()[0] if msg else ""
            raise ModelError(f"{fname} cannot be loaded safely: {detail}; save a supported model "
                             f"with torch.save(model, path) ({_DOCS})") from None
        raise ModelError(_not_torch_file(fname)) from None
    except RuntimeError as e:
        if "TorchScript" in str(e):
            raise ModelError(_TORCHSCRIPT.format(fname=fname)) from None
        raise ModelError(_not_torch_file(fname)) from None
    except Exception:
        raise ModelError(_not_torch_file(fname)) from None

    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{fname} contains a state_dict (parameter names -> tensors), not a model; "
                         f"circa needs the architecture too: save the module, not its state_dict: "
                         f"torch.save(model, path) ({_DOCS})")
    if isinstance(obj, dict):
        raise ModelError(f"{fname} contains a dict (keys: {', '.join(map(repr, list(obj)[:5]))}), "
                         f"not a model; save the module itself: torch.save(model, path) ({_DOCS})")
    raise ModelError(f"{fname} contains a {type(obj).__name__}, not a model; save the module "
                     f"itself: torch.save(model, path) ({_DOCS})")


_TORCHSCRIPT = ("{fname} is a TorchScript archive (torch.jit.save); circa needs the nn.Module "
                "itself: save it with torch.save(model, path) (" + _DOCS + ")")


def _is_torchscript(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _not_torch_file(fname: str) -> str:
    return (f"{fname} is not a model file written by torch.save (or uses the legacy pre-1.6 "
            f"format, which cannot be loaded safely); save the model with torch.save(model, path) "
            f"({_DOCS})")


# ---------------------------------------------------------------------------- import

def _access(path: tuple) -> str:
    s = "model"
    for k in path:
        s += f"[{k}]" if k.isdigit() else f".{k}"
    return s


def _where(path: tuple) -> str:
    return f"layer '{'.'.join(path)}' ({_access(path)})" if path else "the model"


def _unsupported(mod, path, extra="") -> ModelError:
    return ModelError(f"{_where(path)} is {_cls_name(mod)}{extra}, which circa does not support; "
                      f"supported: {SUPPORTED} ({_DOCS})")


def _check_hooks(mod, path):
    for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks"):
        if getattr(mod, attr, None):
            raise ModelError(f"{_where(path)} ({_cls_name(mod)}) has {attr.strip('_').replace('_', ' ')} "
                             f"registered, which circa cannot compile; remove them (e.g. old-style "
                             f"weight_norm) before saving ({_DOCS})")


def _param(mod, attr, path, shape, optional=False):
    """A read-only float64 numpy copy of ``mod.<attr>``, checked for type, shape and finiteness."""
    pname = ".".join(path + (attr,))
    where = f"parameter '{pname}' ({_access(path)}.{attr})"
    t = getattr(mod, attr, None)
    if t is None:
        if optional:
            return None
        raise ModelError(f"{where} is missing")
    if not isinstance(t, torch.Tensor):
        raise ModelError(f"{where} is a {type(t).__name__}, not a tensor")
    if not t.is_floating_point():
        raise ModelError(f"{where} has dtype {t.dtype}; circa imports float models")
    if tuple(t.shape) != tuple(shape):
        raise ModelError(f"{where} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    a = t.detach().to("cpu", torch.float64).numpy().copy()
    if not np.isfinite(a).all():
        bad = "NaN" if np.isnan(a).any() else "infinite"
        raise ModelError(f"{where} contains {bad} values; fix or retrain the model before compiling")
    a.setflags(write=False)
    return a


def _int_attr(mod, attr, path):
    v = getattr(mod, attr, None)
    if type(v) is not int or v < 0:
        raise ModelError(f"{_where(path)} ({_cls_name(mod)}) has invalid {attr}={v!r}")
    return v


def _import_linear(mod, path):
    w = getattr(mod, "weight", None)
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        raise ModelError(f"{_where(path)} (nn.Linear) has no 2-D weight")
    out_f, in_f = w.shape
    name = ".".join(path) or "model"
    return Dense(name, _param(mod, "weight", path, (out_f, in_f)),
                 _param(mod, "bias", path, (out_f,), optional=True))


def _import_mlp(mod, path, out: list):
    """Append Dense/ReLU layers for a Linear, ReLU or (nested) Sequential of those."""
    _check_hooks(mod, path)
    t = type(mod)
    if t is nn.Linear:
        out.append(_import_linear(mod, path))
    elif t is nn.ReLU:
        if getattr(mod, "inplace", False) not in (True, False):
            raise _unsupported(mod, path)
        out.append(ReLU(".".join(path) or "model"))
    elif t is nn.Sequential:
        children = list(mod._modules.items())
        if not children:
            raise ModelError(f"{_where(path)} is an empty nn.Sequential; nothing to compile")
        for key, child in children:
            cpath = path + (str(key),)
            if not isinstance(child, nn.Module):
                raise ModelError(f"{_where(cpath)} is a {type(child).__name__}, not a module")
            if type(child) in (nn.LSTM, nn.GRU):
                raise ModelError(f"{_where(cpath)} is {_cls_name(child)} inside nn.Sequential, which "
                                 f"circa does not support (torch RNNs return a tuple); wrap the RNN "
                                 f"and its head as RNNClassifier(rnn, head) ({_DOCS})")
            _import_mlp(child, cpath, out)
    else:
        extra = ""
        if t is RNNClassifier:
            extra = " nested inside another module (RNNClassifier must be the whole model)"
        raise _unsupported(mod, path, extra)


def _import_rnn(mod, path) -> list:
    _check_hooks(mod, path)
    t = type(mod)
    if t not in (nn.LSTM, nn.GRU):
        raise _unsupported(mod, path)
    cname = _cls_name(mod)
    if getattr(mod, "bidirectional", False) is not False:
        raise ModelError(f"{_where(path)} is a bidirectional {cname}, which circa does not support "
                         f"(bidirectional=True); use a unidirectional {cname} ({_DOCS})")
    if getattr(mod, "batch_first", None) not in (True, False) or getattr(mod, "bias", None) not in (True, False):
        raise ModelError(f"{_where(path)} ({cname}) has invalid batch_first/bias attributes")
    n_layers = _int_attr(mod, "num_layers", path)
    H = _int_attr(mod, "hidden_size", path)
    in_size = _int_attr(mod, "input_size", path)
    if n_layers < 1 or H < 1 or in_size < 1:
        raise ModelError(f"{_where(path)} ({cname}) has invalid sizes")
    P = _int_attr(mod, "proj_size", path) if t is nn.LSTM else 0
    if t is nn.GRU and getattr(mod, "proj_size", 0):
        raise _unsupported(mod, path, " with proj_size")
    layers = []
    for k in range(n_layers):
        name = ".".join(path + (f"l{k}",))
        g = 4 if t is nn.LSTM else 3
        hh_in = P or H
        w_ih = _param(mod, f"weight_ih_l{k}", path, (g * H, in_size))
        w_hh = _param(mod, f"weight_hh_l{k}", path, (g * H, hh_in))
        b_ih = _param(mod, f"bias_ih_l{k}", path, (g * H,), optional=not mod.bias)
        b_hh = _param(mod, f"bias_hh_l{k}", path, (g * H,), optional=not mod.bias)
        if t is nn.LSTM:
            w_hr = _param(mod, f"weight_hr_l{k}", path, (P, H)) if P else None
            layers.append(LSTM(name, in_size, H, P, w_ih, w_hh, b_ih, b_hh, w_hr))
        else:
            layers.append(GRU(name, in_size, H, w_ih, w_hh, b_ih, b_hh))
        in_size = P or H
    return layers


def _check_chain(layers, in_features, path_of):
    """Each Dense's input width must be the previous layer's output width."""
    width = in_features
    for l in layers:
        if isinstance(l, Dense):
            if l.in_features != width:
                raise ModelError(f"{path_of(l)} (nn.Linear) expects {l.in_features} input features "
                                 f"but receives {width}")
            width = l.out_features
        elif isinstance(l, (LSTM, GRU)):
            width = l.out_features
    return width


def _layer_where(l) -> str:
    path = tuple(l.name.split(".")) if l.name != "model" else ()
    return _where(path)


def import_model(module: nn.Module, input_shape=None) -> Network:
    """Import a supported PyTorch module into a :class:`Network` (see the module docstring).

    ``input_shape``, if given, is checked against the model: its last entry must be the
    model's input feature count (for an MLP ``(features,)`` or ``(batch, features)``;
    for an RNN ``(time, features)`` or 3-D in the model's own layout).
    """
    if not isinstance(module, nn.Module):
        raise ModelError(f"expected a torch.nn.Module, got {type(module).__name__}; "
                         f"load files with load_model(path)")
    t = type(module)
    if t is RNNClassifier:
        _check_hooks(module, ())
        rnn = module._modules.get("rnn")
        head = module._modules.get("head")
        if rnn is None or head is None:
            raise ModelError("RNNClassifier is missing its 'rnn' or 'head' submodule")
        if type(rnn) not in (nn.LSTM, nn.GRU):
            raise _unsupported(rnn, ("rnn",), " as RNNClassifier.rnn (must be nn.LSTM or nn.GRU)")
        rnn_layers = _import_rnn(rnn, ("rnn",))
        head_layers: list = []
        if type(head) not in (nn.Linear, nn.Sequential):
            raise _unsupported(head, ("head",), " as RNNClassifier.head (must be nn.Linear or "
                                                "nn.Sequential of nn.Linear/nn.ReLU)")
        _import_mlp(head, ("head",), head_layers)
        layers = rnn_layers + head_layers
        kind, batch_first, head_last = "rnn", bool(rnn.batch_first), True
    elif t in (nn.LSTM, nn.GRU):
        layers = _import_rnn(module, ())
        kind, batch_first, head_last = "rnn", bool(module.batch_first), False
    else:
        layers = []
        _import_mlp(module, (), layers)
        kind, batch_first, head_last = "mlp", True, False

    first = next((l for l in layers if not isinstance(l, ReLU)), None)
    if first is None:
        raise ModelError(f"the model has no nn.Linear, nn.LSTM or nn.GRU layer; nothing to compile "
                         f"(supported: {SUPPORTED})")
    in_features = first.input_size if isinstance(first, (LSTM, GRU)) else first.in_features
    out_features = _check_chain(layers, in_features, _layer_where)
    if input_shape is not None:
        input_shape = tuple(int(d) for d in input_shape)
        ok_dims = (1, 2) if kind == "mlp" else (2, 3)
        if len(input_shape) not in ok_dims or input_shape[-1] != in_features:
            want = "(features,) or (batch, features)" if kind == "mlp" else \
                   "(time, features) or " + ("(batch, time, features)" if batch_first
                                             else "(time, batch, features)")
            raise ModelError(f"input_shape {input_shape} does not fit the model: expected {want} "
                             f"with features = {in_features}")
    return Network(kind=kind, layers=layers, input_features=in_features,
                   output_features=out_features, batch_first=batch_first,
                   head_on_last_step=head_last, input_shape=input_shape, source=t.__name__)


# ------------------------------------------------------------------------ float model

def _t(a):
    return None if a is None else torch.tensor(a, dtype=torch.float64)


def _lstm_layer(l: LSTM, x):
    B, T, _ = x.shape
    H = l.hidden_size
    w_ih, w_hh, w_hr = _t(l.w_ih), _t(l.w_hh), _t(l.w_hr)
    gx = x @ w_ih.T
    if l.b_ih is not None:
        gx = gx + _t(l.b_ih) + _t(l.b_hh)
    h = x.new_zeros(B, l.out_features)
    c = x.new_zeros(B, H)
    outs = []
    for s in range(T):
        gates = gx[:, s] + h @ w_hh.T
        i, f, g, o = gates.split(H, dim=1)           # torch order: i, f, g, o
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if w_hr is not None:
            h = h @ w_hr.T
        outs.append(h)
    return torch.stack(outs, dim=1)


def _gru_layer(l: GRU, x):
    B, T, _ = x.shape
    H = l.hidden_size
    w_ih, w_hh = _t(l.w_ih), _t(l.w_hh)
    gx = x @ w_ih.T
    if l.b_ih is not None:
        gx = gx + _t(l.b_ih)
    b_hh = _t(l.b_hh)
    h = x.new_zeros(B, H)
    outs = []
    for s in range(T):
        gh = h @ w_hh.T
        if b_hh is not None:
            gh = gh + b_hh
        xr, xz, xn = gx[:, s].split(H, dim=1)       # torch order: r, z, n
        hr, hz, hn = gh.split(H, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        outs.append(h)
    return torch.stack(outs, dim=1)


def run_float(network: Network, x, *, torch_layout: bool = False) -> np.ndarray:
    """Evaluate the IR in float64 and return a numpy array.

    MLP: ``x`` is ``(..., input_features)``. RNN: ``x`` is ``(batch, time, features)``
    (always batch-first) and the result ``(batch, time, out)``, or ``(batch, out)`` when
    ``network.head_on_last_step``. With ``torch_layout=True`` an RNN's input and output
    use the original model's convention (``(time, batch, ...)`` if it was not
    batch-first), so the result matches the PyTorch model's forward output.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64)
    else:
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if x.dim() == 0 or x.shape[-1] != network.input_features:
        raise ValueError(f"input has shape {tuple(x.shape)}; the model takes "
                         f"{network.input_features} features in the last dimension")
    time_first = torch_layout and network.kind == "rnn" and not network.batch_first
    if network.kind == "rnn":
        if x.dim() != 3:
            raise ValueError(f"an RNN takes a 3-D input (batch, time, features), got {tuple(x.shape)}")
        if time_first:
            x = x.transpose(0, 1)
    seq = network.kind == "rnn"
    for l in network.layers:
        if isinstance(l, LSTM):
            x = _lstm_layer(l, x)
        elif isinstance(l, GRU):
            x = _gru_layer(l, x)
        else:
            if seq and network.head_on_last_step:
                x = x[:, -1]
                seq = False
            if isinstance(l, Dense):
                x = x @ _t(l.weight).T
                if l.bias is not None:
                    x = x + _t(l.bias)
            elif isinstance(l, ReLU):
                x = torch.relu(x)
            else:
                raise TypeError(f"unknown layer {l!r}")
    if seq and time_first:
        x = x.transpose(0, 1)
    return x.contiguous().numpy()
