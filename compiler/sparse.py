"""Block-sparse (BSR) compression: block magnitude pruning, storage and scheme strings.

Conventions (fixed; the generated hardware depends on them)
-----------------------------------------------------------
* A weight matrix of shape ``(out_features, in_features)`` with block shape
  ``r x c`` is zero-padded to ``(p*r, q*c)`` with ``p = ceil(out_features/r)``
  and ``q = ceil(in_features/c)`` and split into ``p x q`` blocks; block
  ``(i, j)`` is ``W[i*r:(i+1)*r, j*c:(j+1)*c]``.
* A block mask is a boolean array of shape ``(p, q)``; ``True`` keeps a block.
* Storage follows :class:`scipy.sparse.bsr_matrix` on the *padded* shape:
  ``blocks[n]`` is the n-th kept block, block row ``i`` owns
  ``blocks[row_ptr[i]:row_ptr[i+1]]`` with block columns
  ``col_index[row_ptr[i]:row_ptr[i+1]]`` in ascending order, so
  ``scipy.sparse.bsr_matrix((blocks, col_index, row_ptr), shape=(p*r, q*c))``
  is the padded matrix.
* Compression schemes are written as strings (see :func:`parse_scheme`):
  ``dense``, ``circulant:K`` and ``sparse:RxC:DENSITY``.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import torch
from torch import nn

from .circulant import ALLOWED_K, check_k

__all__ = [
    "check_block_shape",
    "check_density",
    "n_keep",
    "prune_blocks",
    "BSR",
    "to_bsr",
    "SparseLinear",
    "Scheme",
    "parse_scheme",
]


def _check_positive_int(value, what):
    """Return ``value`` as an int if it is a positive integer, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{what}={value!r} is invalid; use a positive integer")
    return int(value)


def check_block_shape(r, c):
    """Validate a block shape.

    Parameters
    ----------
    r, c : int
        Block rows and block columns, each a positive integer.

    Returns
    -------
    tuple of int
        ``(r, c)`` as Python ints.

    Raises
    ------
    ValueError
        If ``r`` or ``c`` is not a positive integer.
    """
    return _check_positive_int(r, "block rows r"), _check_positive_int(c, "block columns c")


def check_density(density):
    """Validate a block density.

    Parameters
    ----------
    density : float
        Fraction of blocks kept, ``0 < density <= 1``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``density`` is not a finite number in ``(0, 1]``.
    """
    try:
        d = float(density)
    except (TypeError, ValueError):
        d = math.nan
    if isinstance(density, bool) or not 0.0 < d <= 1.0:  # also rejects NaN
        raise ValueError(
            f"density={density!r} is invalid; use the fraction of blocks to keep, "
            "a number with 0 < density <= 1 (e.g. 0.25)"
        )
    return d


def n_keep(density, nblocks):
    """Number of blocks kept at a given density.

    Parameters
    ----------
    density : float
        ``0 < density <= 1``.
    nblocks : int
        Total number of blocks (``p * q``).

    Returns
    -------
    int
        ``ceil(density * nblocks)`` for the decimal value of ``density``, at
        least 1.  A relative tolerance of 1e-9 absorbs binary floating-point
        rounding, so ``density=0.07`` of 100 blocks keeps 7 blocks and 0.4 of
        15 keeps 6, although ``0.07 * 100`` and ``0.4 * 15`` evaluate to
        slightly more than 7 and 6.
    """
    d = check_density(density)
    return max(1, min(nblocks, math.ceil(d * nblocks * (1 - 1e-9))))


def _to_numpy_2d(weight, what="weight"):
    """Return ``weight`` as a 2-D floating numpy array, checking shape and values."""
    w = weight.detach().cpu().numpy() if torch.is_tensor(weight) else np.asarray(weight)
    if not np.issubdtype(w.dtype, np.floating):
        w = w.astype(np.float64)
    if w.ndim != 2:
        raise ValueError(f"{what} must be 2-D (out_features, in_features), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError(
            f"{what} contain NaN or infinite values; fix the model (e.g. lower the "
            "learning rate or clip gradients) before converting it"
        )
    return w


def _grid(shape, r, c):
    """Block grid ``(p, q)`` of a matrix of ``shape`` with ``r x c`` blocks."""
    return -(-shape[0] // r), -(-shape[1] // c)


def _blocked(w, r, c):
    """Zero-pad the numpy matrix ``w`` and view it as blocks, shape (p, q, r, c)."""
    p, q = _grid(w.shape, r, c)
    padded = np.pad(w, ((0, p * r - w.shape[0]), (0, q * c - w.shape[1])))
    return padded.reshape(p, r, q, c).transpose(0, 2, 1, 3)


def _check_mask(mask, p, q):
    """Return ``mask`` as a boolean numpy array of shape (p, q) or raise ValueError."""
    m = mask.detach().cpu().numpy() if torch.is_tensor(mask) else np.asarray(mask)
    if m.shape != (p, q):
        raise ValueError(
            f"block mask has shape {m.shape} but the matrix has a ({p}, {q}) block grid; "
            "build it with prune_blocks(weight, r, c, density) for the same r and c"
        )
    if m.dtype != np.bool_:
        if not np.isin(m, (0, 1)).all():
            raise ValueError("block mask must be boolean (or hold only 0 and 1)")
        m = m.astype(bool)
    return m


def prune_blocks(weight, r, c, density):
    """Block magnitude pruning: keep the blocks of largest Frobenius norm.

    The matrix is zero-padded to multiples of ``(r, c)`` (padding adds nothing
    to a block's norm) and the ``n_keep(density, p*q)`` = ``ceil(density*p*q)``
    blocks of largest Frobenius norm are kept.  Ties are broken
    deterministically in favour of the block that comes first in row-major
    order.  The budget is global: no block row or column is guaranteed a
    block, so a block row may end up empty (its outputs are then just the
    bias) and another may keep all its blocks.

    Parameters
    ----------
    weight : numpy.ndarray or torch.Tensor, shape (out_features, in_features)
        Dense weight (``nn.Linear.weight`` layout).
    r, c : int
        Block shape (rows, columns), positive integers.
    density : float
        Fraction of blocks kept, ``0 < density <= 1``.

    Returns
    -------
    numpy.ndarray, bool, shape (p, q)
        Block mask with exactly ``n_keep(density, p*q)`` ``True`` entries,
        ``p = ceil(out_features/r)``, ``q = ceil(in_features/c)``.

    Raises
    ------
    ValueError
        If ``r``/``c``/``density`` are invalid, ``weight`` is not 2-D, or it
        holds NaN/inf.
    """
    r, c = check_block_shape(r, c)
    density = check_density(density)
    w = _to_numpy_2d(weight).astype(np.float64)
    p, q = _grid(w.shape, r, c)
    norms = np.sqrt((_blocked(w, r, c) ** 2).sum(axis=(2, 3))).ravel()
    order = np.argsort(-norms, kind="stable")  # stable: equal norms keep row-major order
    mask = np.zeros(p * q, dtype=bool)
    mask[order[: n_keep(density, p * q)]] = True
    return mask.reshape(p, q)


@dataclasses.dataclass(frozen=True, eq=False)
class BSR:
    """Block compressed sparse row matrix (CSR of ``r x c`` blocks).

    Layout as :class:`scipy.sparse.bsr_matrix` on the padded shape
    ``(p*r, q*c)``; ``shape`` is the unpadded (cropped) shape.

    Attributes
    ----------
    blocks : numpy.ndarray, float, shape (nnz, r, c)
        Kept blocks, block rows in order, columns ascending within a row.
    col_index : numpy.ndarray, int64, shape (nnz,)
        Block column of each kept block.
    row_ptr : numpy.ndarray, int64, shape (p + 1,)
        Block row ``i`` owns ``blocks[row_ptr[i]:row_ptr[i+1]]``;
        ``row_ptr[0] == 0`` and ``row_ptr[-1] == nnz``.
    shape : tuple of int
        ``(out_features, in_features)``.
    r, c : int
        Block shape.
    """

    blocks: np.ndarray
    col_index: np.ndarray
    row_ptr: np.ndarray
    shape: tuple
    r: int
    c: int

    def __post_init__(self):
        r, c = check_block_shape(self.r, self.c)
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be (out_features, in_features) >= 1, got {self.shape!r}")
        p, q = _grid(shape, r, c)
        blocks = np.asarray(self.blocks)
        col = np.asarray(self.col_index, dtype=np.int64)
        ptr = np.asarray(self.row_ptr, dtype=np.int64)
        nnz = len(col)
        if blocks.shape != (nnz, r, c):
            raise ValueError(f"blocks must have shape (nnz, r, c) = {(nnz, r, c)}, got {blocks.shape}")
        if ptr.shape != (p + 1,) or ptr[0] != 0 or ptr[-1] != nnz or np.any(np.diff(ptr) < 0):
            raise ValueError(
                f"row_ptr must be non-decreasing of length p + 1 = {p + 1} from 0 to nnz = {nnz}, "
                f"got {ptr.tolist()}")
        if nnz and (col.min() < 0 or col.max() >= q):
            raise ValueError(f"col_index must lie in 0..{q - 1} (q = ceil({shape[1]}/{c}))")
        for i in range(p):
            if np.any(np.diff(col[ptr[i]:ptr[i + 1]]) <= 0):
                raise ValueError(f"col_index of block row {i} must be strictly ascending")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "r", r)
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "col_index", col)
        object.__setattr__(self, "row_ptr", ptr)

    @property
    def grid(self):
        """Block grid ``(p, q)``."""
        return _grid(self.shape, self.r, self.c)

    @property
    def padded_shape(self):
        """Padded shape ``(p*r, q*c)`` (the shape scipy sees)."""
        p, q = self.grid
        return p * self.r, q * self.c

    @property
    def nnz(self):
        """Number of stored blocks."""
        return len(self.col_index)

    @property
    def density(self):
        """Fraction of blocks stored, ``nnz / (p*q)``."""
        p, q = self.grid
        return self.nnz / (p * q)

    def mask(self):
        """Block mask, numpy bool array of shape (p, q)."""
        m = np.zeros(self.grid, dtype=bool)
        m[self.row_index(), self.col_index] = True
        return m

    def row_index(self):
        """Block row of each stored block, int64 array of shape (nnz,)."""
        return np.repeat(np.arange(self.grid[0]), np.diff(self.row_ptr))

    def dense(self):
        """Materialise the matrix.

        Returns
        -------
        numpy.ndarray, shape (out_features, in_features)
            Zeros outside the stored blocks; padding cropped.
        """
        p, q = self.grid
        full = np.zeros((p, q, self.r, self.c), dtype=self.blocks.dtype)
        full[self.row_index(), self.col_index] = self.blocks
        return full.transpose(0, 2, 1, 3).reshape(self.padded_shape)[: self.shape[0], : self.shape[1]]

    def matvec(self, x):
        """Multiply by vectors, touching only the stored blocks.

        Parameters
        ----------
        x : array_like, shape (in_features,) or (..., in_features)

        Returns
        -------
        numpy.ndarray, shape (out_features,) or (..., out_features)
            ``dense() @ x`` for each vector (``x @ dense().T`` for a batch).
        """
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.shape[1]:
            raise ValueError(f"x must have shape (..., {self.shape[1]}), got {x.shape}")
        p, q = self.grid
        batch = x.shape[:-1]
        xb = np.pad(x, [(0, 0)] * len(batch) + [(0, q * self.c - self.shape[1])])
        xb = xb.reshape(*batch, q, self.c)[..., self.col_index, :]  # (..., nnz, c)
        prod = np.einsum("nrc,...nc->n...r", self.blocks, xb)  # (nnz, ..., r)
        y = np.zeros((p, *batch, self.r), dtype=np.result_type(self.blocks, x))
        np.add.at(y, self.row_index(), prod)
        return np.moveaxis(y, 0, -2).reshape(*batch, p * self.r)[..., : self.shape[0]]

    def to_scipy(self):
        """The padded matrix as a :class:`scipy.sparse.bsr_matrix` (shape ``padded_shape``)."""
        import scipy.sparse

        return scipy.sparse.bsr_matrix((self.blocks, self.col_index, self.row_ptr),
                                       shape=self.padded_shape)


def to_bsr(weight, r, c, mask):
    """Store the masked blocks of a matrix in BSR form.

    Parameters
    ----------
    weight : numpy.ndarray or torch.Tensor, shape (out_features, in_features)
        Dense weight; entries outside kept blocks are ignored.
    r, c : int
        Block shape.
    mask : array_like, bool, shape (p, q)
        Blocks to keep, e.g. from :func:`prune_blocks`.

    Returns
    -------
    BSR
        ``blocks`` in ``weight``'s float dtype (padding zero-filled).

    Raises
    ------
    ValueError
        If the block shape is invalid, ``mask`` does not match the block grid,
        or ``weight`` is not 2-D or holds NaN/inf.
    """
    r, c = check_block_shape(r, c)
    w = _to_numpy_2d(weight)
    p, q = _grid(w.shape, r, c)
    m = _check_mask(mask, p, q)
    rows, cols = np.nonzero(m)  # row-major: rows in order, columns ascending
    row_ptr = np.concatenate([[0], np.cumsum(m.sum(axis=1))]).astype(np.int64)
    return BSR(np.ascontiguousarray(_blocked(w, r, c)[rows, cols]), cols.astype(np.int64),
               row_ptr, w.shape, r, c)


class SparseLinear(nn.Module):
    """Linear layer whose weight is multiplied by a fixed block mask.

    ``y = (weight * M) @ x + bias`` with ``M`` the block mask expanded to
    entries, so pruned blocks stay exactly zero in the output and get zero
    gradient: training keeps the pruned structure ("masked retraining").

    Parameters
    ----------
    in_features, out_features : int
        Dense layer dimensions.
    r, c : int
        Block shape.
    mask : array_like, bool, shape (p, q), optional
        Kept blocks; default all blocks.
    bias : bool, default True
    dtype : torch.dtype, optional

    Attributes
    ----------
    weight : torch.nn.Parameter, shape (out_features, in_features)
        Dense storage (``nn.Linear`` layout); entries of pruned blocks are
        zeroed on construction and ignored in :meth:`forward`.
    bias : torch.nn.Parameter or None, shape (out_features,)
    mask : torch.Tensor (buffer), bool, shape (p, q)
    """

    def __init__(self, in_features, out_features, r, c, mask=None, bias=True, dtype=None):
        super().__init__()
        self.in_features = _check_positive_int(in_features, "in_features")
        self.out_features = _check_positive_int(out_features, "out_features")
        self.r, self.c = check_block_shape(r, c)
        p, q = _grid((self.out_features, self.in_features), self.r, self.c)
        m = np.ones((p, q), dtype=bool) if mask is None else _check_mask(mask, p, q)
        self.register_buffer("mask", torch.as_tensor(m.copy()))
        base = nn.Linear(self.in_features, self.out_features, bias=bias, dtype=dtype)
        with torch.no_grad():
            base.weight.mul_(self.element_mask().to(base.weight.dtype))
        self.weight = base.weight
        self.bias = base.bias

    @classmethod
    def from_linear(cls, linear, r, c, density):
        """Prune an ``nn.Linear`` by block magnitude (see :func:`prune_blocks`).

        Parameters
        ----------
        linear : torch.nn.Linear
        r, c : int
            Block shape.
        density : float
            Fraction of blocks kept, ``0 < density <= 1``.

        Returns
        -------
        SparseLinear
            Same dtype as ``linear``; kept blocks and bias copied, pruned
            blocks zeroed.
        """
        mask = prune_blocks(linear.weight, r, c, density)
        layer = cls(linear.in_features, linear.out_features, r, c, mask=mask,
                    bias=linear.bias is not None, dtype=linear.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(linear.weight * layer.element_mask())
            if linear.bias is not None:
                if not torch.isfinite(linear.bias).all():
                    raise ValueError("bias values contain NaN or infinite values; fix the model "
                                     "before converting it")
                layer.bias.copy_(linear.bias)
        return layer

    def element_mask(self):
        """Block mask expanded to entries, bool tensor of shape (out_features, in_features)."""
        m = self.mask.repeat_interleave(self.r, 0).repeat_interleave(self.c, 1)
        return m[: self.out_features, : self.in_features]

    def masked_weight(self):
        """Effective weight ``weight * mask``, shape (out_features, in_features) (differentiable)."""
        return self.weight * self.element_mask()

    def to_linear(self):
        """Equivalent ``nn.Linear`` with the masked weight materialised."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        dtype=self.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.masked_weight())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin

    def bsr(self):
        """The masked weight in BSR form (numpy, see :func:`to_bsr`); bias not included."""
        return to_bsr(self.weight.detach(), self.r, self.c, self.mask.cpu().numpy())

    def forward(self, x):
        """Apply the layer.

        Parameters
        ----------
        x : torch.Tensor, shape (..., in_features)

        Returns
        -------
        torch.Tensor, shape (..., out_features)
        """
        return nn.functional.linear(x, self.masked_weight(), self.bias)

    def extra_repr(self):
        p, q = self.mask.shape
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"block={self.r}x{self.c}, blocks={int(self.mask.sum())}/{p * q}, "
                f"bias={self.bias is not None}")


_SCHEME_FORMS = ("accepted forms: 'dense', 'circulant:K' with K in "
                 f"{{{', '.join(map(str, ALLOWED_K))}}}, or 'sparse:RxC:DENSITY' with positive "
                 "integers R, C and 0 < DENSITY <= 1 (e.g. 'sparse:4x4:0.25')")


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A compression scheme for weight matrices.

    Attributes
    ----------
    kind : str
        ``"dense"``, ``"circulant"`` or ``"sparse"``.
    k : int or None
        Block size of ``"circulant"`` (one of :data:`~circa.compiler.circulant.ALLOWED_K`).
    r, c : int or None
        Block shape of ``"sparse"``.
    density : float or None
        Fraction of blocks kept by ``"sparse"``, ``0 < density <= 1``.

    ``str(scheme)`` gives the canonical string accepted by :func:`parse_scheme`.
    """

    kind: str
    k: int | None = None
    r: int | None = None
    c: int | None = None
    density: float | None = None

    def __post_init__(self):
        fields = {"k": self.k, "r": self.r, "c": self.c, "density": self.density}
        needed = {"dense": (), "circulant": ("k",), "sparse": ("r", "c", "density")}
        if self.kind not in needed:
            raise ValueError(f"unknown scheme kind {self.kind!r}; {_SCHEME_FORMS}")
        wrong = [f for f, v in fields.items() if (v is None) == (f in needed[self.kind])]
        if wrong:
            raise ValueError(f"scheme {self.kind!r} needs exactly the fields "
                             f"{list(needed[self.kind])}; fix {wrong}")
        if self.kind == "circulant":
            object.__setattr__(self, "k", check_k(self.k))
        elif self.kind == "sparse":
            r, c = check_block_shape(self.r, self.c)
            object.__setattr__(self, "r", r)
            object.__setattr__(self, "c", c)
            object.__setattr__(self, "density", check_density(self.density))

    def __str__(self):
        if self.kind == "circulant":
            return f"circulant:{self.k}"
        if self.kind == "sparse":
            return f"sparse:{self.r}x{self.c}:{self.density:g}"
        return "dense"


_INT = r"[0-9]+"
_FLOAT = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"


def parse_scheme(text):
    """Parse a compression scheme string.

    Parameters
    ----------
    text : str
        ``"dense"``; ``"circulant:K"`` with K in 2, 4, 8, 16, 32, 64; or
        ``"sparse:RxC:DENSITY"`` with positive integers R, C (block rows x
        block columns) and ``0 < DENSITY <= 1`` the fraction of blocks kept,
        e.g. ``"sparse:4x4:0.25"``.  Surrounding whitespace and the case of
        the keyword and of the ``x`` are ignored.

    Returns
    -------
    Scheme
        E.g. ``Scheme("sparse", r=4, c=4, density=0.25)``.

    Raises
    ------
    ValueError
        If ``text`` is not one of the accepted forms (the message lists them).
    """
    if not isinstance(text, str):
        raise ValueError(f"scheme must be a string, got {type(text).__name__}; {_SCHEME_FORMS}")
    s = text.strip().lower()
    if s == "dense":
        return Scheme("dense")
    m = re.fullmatch(rf"circulant:({_INT})", s)
    if m:
        k = int(m.group(1))
        if k not in ALLOWED_K:
            raise ValueError(f"scheme {text!r}: block size K={k} is not supported; {_SCHEME_FORMS}")
        return Scheme("circulant", k=k)
    m = re.fullmatch(rf"sparse:({_INT})x({_INT}):({_FLOAT})", s)
    if m:
        r, c, d = int(m.group(1)), int(m.group(2)), float(m.group(3))
        if r < 1 or c < 1:
            raise ValueError(f"scheme {text!r}: block shape {r}x{c} must be positive; {_SCHEME_FORMS}")
        if not 0.0 < d <= 1.0:
            raise ValueError(f"scheme {text!r}: DENSITY={d:g} is outside (0, 1]; {_SCHEME_FORMS}")
        return Scheme("sparse", r=r, c=c, density=d)
    raise ValueError(f"cannot parse compression scheme {text!r}; {_SCHEME_FORMS}")
