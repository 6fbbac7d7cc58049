"""Block-circulant matrices: projection, expansion, spectra and quantisation.

Conventions (fixed; the generated hardware depends on them)
-----------------------------------------------------------
* A block-circulant matrix of shape ``(out_features, in_features)`` with block
  size ``k`` is zero-padded to ``(p*k, q*k)`` with ``p = ceil(out_features/k)``
  and ``q = ceil(in_features/k)`` and consists of ``p x q`` circulant blocks.
* Block ``(i, j)`` is defined by its first column ``w[i, j, :]`` (length ``k``)
  with :func:`scipy.linalg.circulant`'s convention
  ``C[r, c] = w[i, j, (r - c) mod k]``.  Hence ``C @ x_j`` is the circular
  convolution ``irfft(rfft(w[i, j]) * rfft(x_j))``.
* Spectra are stored in FFTW's *halfcomplex* (r2hc) order: ``k`` reals
  ``[r0, r1, ..., r_{k/2}, i_{k/2-1}, ..., i_1]`` where ``X_m = r_m + j i_m``
  is the unnormalised DFT (:func:`numpy.fft.rfft`).  Bins 0 and ``k/2`` are
  real, so their imaginary parts are not stored.
* Allowed block sizes are :data:`ALLOWED_K`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from circa import numerics as nx

__all__ = [
    "ALLOWED_K",
    "check_k",
    "project",
    "expand",
    "to_halfcomplex",
    "from_halfcomplex",
    "spectrum",
    "quantize",
    "CirculantLinear",
]

#: Block sizes supported by the hardware FFT units.
ALLOWED_K = nx.BLOCK_SIZES


def check_k(k):
    """Validate a block size.

    Parameters
    ----------
    k : int
        Block size.

    Returns
    -------
    int
        ``k`` as a Python int.

    Raises
    ------
    ValueError
        If ``k`` is not one of :data:`ALLOWED_K`.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) not in ALLOWED_K:
        raise ValueError(
            f"block size k={k!r} is not supported; choose one of {list(ALLOWED_K)}"
        )
    return int(k)


def _check_finite(x, what):
    """Raise ValueError if the numpy array or tensor ``x`` holds NaN or inf."""
    finite = torch.isfinite(x).all().item() if torch.is_tensor(x) else np.isfinite(x).all()
    if not finite:
        raise ValueError(
            f"{what} contain NaN or infinite values; fix the model (e.g. lower the "
            "learning rate or clip gradients) before converting it"
        )


def _as_float(x):
    """Return ``x`` as a floating numpy array or tensor (keeping its kind)."""
    if torch.is_tensor(x):
        return x if x.is_floating_point() else x.to(torch.get_default_dtype())
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _diag_index(k):
    """Index matrix ``idx[r, c] = (r - c) mod k`` as an int64 numpy array (k, k)."""
    r = np.arange(k)
    return (r[:, None] - r[None, :]) % k


def _index(idx, like):
    """Return the numpy index array ``idx`` as a tensor if ``like`` is a tensor."""
    return torch.as_tensor(idx, device=like.device) if torch.is_tensor(like) else idx


def _swap_middle(x):
    """Swap axes 1 and 2 of a 4-D numpy array or tensor."""
    return x.transpose(1, 2) if torch.is_tensor(x) else x.transpose(0, 2, 1, 3)


def project(weight, k):
    """Nearest block-circulant matrix in the Frobenius norm.

    The matrix is zero-padded to ``(p*k, q*k)``; each ``k x k`` block ``B_ij``
    is replaced by the circulant matrix whose first column is the mean of
    ``B_ij`` along its wrapped diagonals, over the entries inside the matrix:
    ``w[i, j, d] = mean_r B_ij[r, (r - d) mod k]``.  This is the orthogonal
    projection onto the circulant subspace (its diagonals are orthogonal).

    Parameters
    ----------
    weight : numpy.ndarray or torch.Tensor, shape (out_features, in_features)
        Dense weight matrix (``nn.Linear.weight`` layout).
    k : int
        Block size, one of :data:`ALLOWED_K`.

    Returns
    -------
    w : numpy.ndarray or torch.Tensor, shape (p, q, k), float
        First columns of the circulant blocks; same kind (numpy/torch) as
        ``weight``.  Padded positions are left out of the means, so
        ``expand(project(weight, k), out, in)`` is the nearest block-circulant
        matrix to ``weight`` itself, and ``project(expand(w, out, in), k)`` is ``w``
        wherever a diagonal has an entry inside the matrix.

    Raises
    ------
    ValueError
        If ``k`` is not allowed, ``weight`` is not 2-D, or it holds NaN/inf.
    """
    k = check_k(k)
    weight = _as_float(weight)
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    _check_finite(weight, "weights")
    out_f, in_f = weight.shape
    p, q = -(-out_f // k), -(-in_f // k)
    if torch.is_tensor(weight):
        padded = torch.nn.functional.pad(weight, (0, q * k - in_f, 0, p * k - out_f))
    else:
        padded = np.pad(weight, ((0, p * k - out_f), (0, q * k - in_f)))
    rows = _index(np.arange(k)[:, None], weight)
    cols = _index(_diag_index(k), weight)  # cols[r, d] = (r - d) mod k

    def diagonal_sums(m):  # (p, q, k_d): sum_r B_ij[r, (r - d) mod k]
        return _swap_middle(m.reshape(p, k, q, k))[..., rows, cols].sum(-2)

    # Padding is cropped away, so only real entries count: each wrapped diagonal is the
    # mean of its entries inside the (out, in) matrix. Without padding that is the mean
    # of all k; either way it is the Frobenius-nearest block-circulant matrix.
    present = np.zeros((p * k, q * k))
    present[:out_f, :in_f] = 1
    counts = np.maximum(diagonal_sums(present), 1)
    if torch.is_tensor(weight):
        counts = torch.as_tensor(counts, dtype=weight.dtype)
    return diagonal_sums(padded) / counts


def expand(w, out_features, in_features):
    """Materialise a block-circulant matrix and crop the padding.

    Parameters
    ----------
    w : numpy.ndarray or torch.Tensor, shape (p, q, k)
        First columns of the circulant blocks.
    out_features, in_features : int
        Shape of the cropped result; must satisfy ``ceil(out_features/k) == p``
        and ``ceil(in_features/k) == q``.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (out_features, in_features)
        Dense matrix with ``M[i*k + r, j*k + c] = w[i, j, (r - c) mod k]``,
        same kind as ``w`` (differentiable for tensors).
    """
    w = _as_float(w)
    if w.ndim != 3:
        raise ValueError(f"w must have shape (p, q, k), got {tuple(w.shape)}")
    p, q, k = w.shape
    check_k(k)
    if -(-out_features // k) != p or -(-in_features // k) != q:
        raise ValueError(
            f"w of shape {tuple(w.shape)} does not match a ({out_features}, {in_features}) "
            f"matrix: expected p={-(-out_features // k)}, q={-(-in_features // k)}"
        )
    blocks = w[..., _index(_diag_index(k), w)]  # (p, q, k_r, k_c)
    dense = _swap_middle(blocks).reshape(p * k, q * k)
    return dense[:out_features, :in_features]


def _np(x):
    """Return ``x`` as a numpy array (detaching tensors)."""
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def to_halfcomplex(rfft_values):
    """Pack an rfft spectrum into FFTW halfcomplex order.

    Parameters
    ----------
    rfft_values : array_like, complex, shape (..., k/2 + 1)
        Output of :func:`numpy.fft.rfft` along the last axis (``k`` even).

    Returns
    -------
    numpy.ndarray, float, shape (..., k)
        ``[Re X_0, ..., Re X_{k/2}, Im X_{k/2-1}, ..., Im X_1]``.  The
        imaginary parts of bins 0 and ``k/2`` are dropped (zero for real input).
    """
    x = _np(rfft_values)
    half = x.shape[-1] - 1
    if half < 1:
        raise ValueError(f"rfft spectrum needs at least 2 bins, got shape {x.shape}")
    return np.concatenate([x.real, x.imag[..., half - 1:0:-1]], axis=-1)


def from_halfcomplex(hc):
    """Unpack a halfcomplex spectrum into rfft layout.

    Parameters
    ----------
    hc : array_like, float, shape (..., k)
        Spectrum in FFTW halfcomplex order (``k`` even).

    Returns
    -------
    numpy.ndarray, complex128, shape (..., k/2 + 1)
        Spectrum in :func:`numpy.fft.rfft` layout (bins 0 and ``k/2`` real).
    """
    hc = _np(hc).astype(np.float64, copy=False)
    k = hc.shape[-1]
    if k < 2 or k % 2:
        raise ValueError(f"halfcomplex length must be even and >= 2, got {k}")
    half = k // 2
    out = hc[..., : half + 1].astype(np.complex128)
    out[..., half - 1:0:-1] += 1j * hc[..., half + 1:]
    return out


def spectrum(w):
    """Halfcomplex DFT of ``w`` along the last axis.

    Parameters
    ----------
    w : array_like, float, shape (..., k)
        E.g. circulant first columns of shape (p, q, k).

    Returns
    -------
    numpy.ndarray, float64, shape (..., k)
        ``to_halfcomplex(numpy.fft.rfft(w, axis=-1))``.
    """
    return to_halfcomplex(np.fft.rfft(_np(w).astype(np.float64, copy=False), axis=-1))


def quantize(values, bits):
    """Quantise to signed fixed point with a power-of-two scale.

    ``frac_bits`` is the largest integer ``f`` such that
    ``floor(max|values| * 2**f + 0.5) <= 2**(bits-1) - 1``; it may be negative
    for large values.  Each value becomes ``floor(v * 2**f + 0.5)``
    (round half up), saturated to ``[-2**(bits-1), 2**(bits-1) - 1]``, so
    ``values ~= ints * 2.0**-frac_bits``.

    Parameters
    ----------
    values : array_like or torch.Tensor, float, any shape
        Values to quantise.
    bits : int
        Total signed word width, 2..32.

    Returns
    -------
    ints : numpy.ndarray, int64, same shape as ``values``
    frac_bits : int
        Number of fractional bits; 0 if all values are zero.

    Raises
    ------
    ValueError
        If ``bits`` is outside 2..32 or ``values`` holds NaN/inf.
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 32:
        raise ValueError(f"bits={bits!r} is out of range; use an integer word width between 2 and 32")
    v = _np(values).astype(np.float64)
    _check_finite(v, "values to quantise")
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    m = float(np.max(np.abs(v))) if v.size else 0.0
    if m == 0.0:
        return np.zeros(v.shape, dtype=np.int64), 0

    def fits(f):
        return math.floor(math.ldexp(m, f) + 0.5) <= hi

    f = math.floor(math.log2((hi + 0.5) / m))
    while not fits(f):
        f -= 1
    while fits(f + 1):
        f += 1
    ints = np.floor(np.ldexp(v, f) + 0.5)
    return np.clip(ints, lo, hi).astype(np.int64), f


class CirculantLinear(nn.Module):
    """Linear layer with a block-circulant weight, trained in that parametrisation.

    ``y = expand(w) @ x + b`` computed with FFTs: the input is zero-padded to
    ``q*k``, split into ``q`` blocks, multiplied block-wise in the frequency
    domain and the output is cropped to ``out_features``.

    Parameters
    ----------
    in_features, out_features : int
        Dense layer dimensions.
    k : int
        Block size, one of :data:`ALLOWED_K`.
    bias : bool, default True
        Whether to learn an additive bias of shape (out_features,).

    Attributes
    ----------
    w : torch.nn.Parameter, shape (p, q, k)
        First columns of the circulant blocks.
    bias : torch.nn.Parameter or None, shape (out_features,)
    """

    def __init__(self, in_features, out_features, k, bias=True):
        super().__init__()
        self.k = check_k(k)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.p = -(-self.out_features // self.k)
        self.q = -(-self.in_features // self.k)
        bound = 1.0 / math.sqrt(self.in_features)
        self.w = nn.Parameter(torch.empty(self.p, self.q, self.k).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(self.out_features).uniform_(-bound, bound)) if bias else None

    @classmethod
    def from_linear(cls, linear, k):
        """Build from an ``nn.Linear`` by Frobenius-nearest projection.

        Parameters
        ----------
        linear : torch.nn.Linear
        k : int
            Block size, one of :data:`ALLOWED_K`.

        Returns
        -------
        CirculantLinear
            Same dtype as ``linear``; bias copied.
        """
        layer = cls(linear.in_features, linear.out_features, k, bias=linear.bias is not None)
        with torch.no_grad():
            layer.w = nn.Parameter(project(linear.weight.detach().clone(), k))
            if linear.bias is not None:
                _check_finite(linear.bias, "bias values")
                layer.bias = nn.Parameter(linear.bias.detach().clone())
        return layer

    def weight(self):
        """Dense weight ``expand(w)``, shape (out_features, in_features) (differentiable)."""
        return expand(self.w, self.out_features, self.in_features)

    def to_linear(self):
        """Equivalent ``nn.Linear`` with the structured weight materialised."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        dtype=self.w.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.weight())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin

    def forward(self, x):
        """Apply the layer.

        Parameters
        ----------
        x : torch.Tensor, shape (..., in_features)

        Returns
        -------
        torch.Tensor, shape (..., out_features)
        """
        k, p, q = self.k, self.p, self.q
        x = nn.functional.pad(x, (0, q * k - self.in_features))
        xf = torch.fft.rfft(x.reshape(*x.shape[:-1], q, k), dim=-1)  # (..., q, k/2+1)
        wf = torch.fft.rfft(self.w, dim=-1)  # (p, q, k/2+1)
        yf = torch.einsum("...jf,ijf->...if", xf, wf)  # (..., p, k/2+1)
        y = torch.fft.irfft(yf, n=k, dim=-1).reshape(*x.shape[:-1], p * k)
        y = y[..., : self.out_features]
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"k={self.k}, bias={self.bias is not None}")
