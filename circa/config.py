"""Hardware parameters: what is generated, as opposed to what is programmed.

Plain dataclasses with no Amaranth, so the compiler can target a configuration without
importing the hardware generators. Parameters are validated on construction, with
messages that name the parameter, its value and the allowed range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circa import numerics as nx


def check_block_size(k):
    if k not in nx.BLOCK_SIZES:
        raise ValueError(f"FFT size k must be a power of 2 from 2 to 64, not {k!r}")


def check_width(name, value, lo=2, hi=nx.MAX_OPERAND_WIDTH):
    if not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi} "
                         f"(multiplier operands are at most {nx.MAX_OPERAND_WIDTH} bits), "
                         f"not {value!r}")



@dataclass(frozen=True)
class EngineConfig:
    """Hardware parameters of a block-circulant engine (generator parameters, not program).

    ``max_q`` input blocks fit in the spectrum buffer; each lane's weight memory holds
    ``weight_depth`` spectra, so a ``p x q``-block matrix fits if
    ``ceil(p / lanes) * q <= weight_depth``.
    """
    k: int = 16
    lanes: int = 2
    data_width: int = 16
    weight_width: int = 16
    fft_width: int = 18
    ifft_width: int = 18
    max_q: int = 64
    weight_depth: int = 1024

    def __post_init__(self):
        check_block_size(self.k)
        if not isinstance(self.lanes, int) or not 1 <= self.lanes <= 64:
            raise ValueError(f"lanes must be an integer from 1 to 64, not {self.lanes!r}")
        check_width("FFT width", self.fft_width)
        check_width("IFFT width", self.ifft_width)
        check_width("weight width", self.weight_width)
        check_width("data width", self.data_width, hi=min(self.fft_width, self.ifft_width))
        for name in ("max_q", "weight_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 1 << 16:
                raise ValueError(f"{name} must be an integer from 1 to 65536, not {value!r}")
        if self.max_q > self.weight_depth:
            raise ValueError(f"max_q ({self.max_q}) cannot exceed weight_depth "
                             f"({self.weight_depth}): one lane holds a whole row of blocks")

    @property
    def fft_out_width(self) -> int:
        return min(self.data_width + self.k.bit_length() - 1, self.fft_width)

    @property
    def acc_width(self) -> int:
        return nx.accumulator_width(self.fft_out_width, self.weight_width, self.max_q)

    @property
    def max_p(self) -> int:
        return self.lanes * self.weight_depth

    @property
    def mac_multipliers(self) -> int:
        """Real multipliers in the MAC array: bins 0 and k/2 take one, the others four."""
        return self.lanes * (4 * (self.k // 2 - 1) + 2)

    def check_matrix(self, p: int, q: int, shift: int = 0, out_shift: int = 0):
        """Raise ``ValueError`` if a ``p x q``-block matrix or its shifts do not fit."""
        if not 1 <= q <= self.max_q:
            raise ValueError(f"q = {q} input blocks ({q * self.k} inputs) does not fit: the "
                             f"spectrum buffer holds max_q = {self.max_q} blocks; build the "
                             f"engine with a larger max_q or a larger k")
        groups = -(-p // self.lanes)
        if p < 1 or groups * q > self.weight_depth:
            raise ValueError(f"a {p} x {q}-block matrix needs {groups * q} weight words per "
                             f"lane, more than weight_depth = {self.weight_depth}; use more "
                             f"lanes, a larger weight_depth or a larger k")
        if not 0 <= shift < self.acc_width:
            raise ValueError(f"shift must be from 0 to {self.acc_width - 1}, not {shift}")
        if not 0 <= out_shift < self.ifft_width:
            raise ValueError(f"out_shift must be from 0 to {self.ifft_width - 1}, not {out_shift}")

    def check_weights(self, wf: np.ndarray):
        wf = np.asarray(wf)
        if wf.ndim != 3 or wf.shape[2] != self.k:
            raise ValueError(f"weight spectra must have shape (p, q, {self.k}), not {wf.shape}")
        lo, hi = nx.signed_range(self.weight_width)
        if wf.size and (wf.min() < lo or wf.max() > hi):
            raise ValueError(f"weight spectra must fit in {self.weight_width} signed bits "
                             f"[{lo}, {hi}], found [{wf.min()}, {wf.max()}]")


def weight_images(cfg: EngineConfig, matrices: list) -> tuple[np.ndarray, list[int]]:
    """Lay out weight spectra ``(p, q, k)``, one matrix after another, as the lanes' memory
    images ``(lanes, weight_depth, k)``. Returns the images and each matrix's base address.

    Block ``(g*L + l, j)`` of a matrix at base ``b`` is at lane ``l``, address ``b + g*q + j``.
    """
    image = np.zeros((cfg.lanes, cfg.weight_depth, cfg.k), dtype=np.int64)
    bases, base = [], 0
    for wf in matrices:
        cfg.check_weights(wf)
        p, q, k = wf.shape
        cfg.check_matrix(p, q)
        groups = -(-p // cfg.lanes)
        if base + groups * q > cfg.weight_depth:
            raise ValueError(f"the weights need {base + groups * q} words per lane, more than "
                             f"weight_depth = {cfg.weight_depth}; use more lanes, a larger "
                             f"weight_depth or a larger k")
        padded = np.zeros((groups * cfg.lanes, q, k), dtype=np.int64)
        padded[:p] = wf
        image[:, base:base + groups * q] = (padded.reshape(groups, cfg.lanes, q, k)
                                            .transpose(1, 0, 2, 3).reshape(cfg.lanes, -1, k))
        bases.append(base)
        base += groups * q
    return image, bases


@dataclass(frozen=True)
class AccelConfig:
    """Hardware parameters of a whole accelerator: the engines plus its memories.

    ``engine`` is the block-circulant engine; ``sparse_block`` the ``(r, c)`` block shape
    of the block-sparse engine (dense layers use it with every block present; ``c`` and
    ``r`` divide ``k``); ``act_depth`` scratchpad words of ``k`` activations;
    ``imem_depth`` instructions; ``sparse_depth`` non-zero blocks; ``tables`` PWL tables of
    ``pwl_segments`` segments (0: no sigmoid or tanh, and a narrower vector unit), each
    entry a ``pwl_slope_width``-bit slope (at most 18: a multiplier operand) and a
    ``pwl_icept_width``-bit intercept (at most 48). ``sparse_engine = False`` leaves the
    block-sparse engine out (its ``r * c`` multipliers, block RAMs and LUTs): a Program
    without MVS instructions does not need it, and an MVS then stops the run with
    ``error``. ``vector_width`` words of a block go through the vector unit each cycle
    (``None``: all ``k``; a smaller power of 2 takes ``k / vector_width`` cycles a block,
    with that many fewer multipliers, table copies and shifters: hw/vector.py).
    """
    engine: EngineConfig = EngineConfig()
    sparse_block: tuple = (4, 4)
    act_depth: int = 2048
    imem_depth: int = 512
    sparse_depth: int = 4096
    tables: int = 8
    pwl_segments: int = 32
    pwl_slope_width: int = 18
    pwl_icept_width: int = 48
    sparse_engine: bool = True
    vector_width: int | None = None

    def __post_init__(self):
        k = self.engine.k
        v = self.vector_width
        if v is not None and not (isinstance(v, int) and 1 <= v <= k and v & (v - 1) == 0):
            raise ValueError(f"vector_width (--vector-width) must be a power of 2 from 1 to "
                             f"k = {k} (None: k), not {v!r}")
        r, c = self.sparse_block
        if not (isinstance(r, int) and isinstance(c, int) and r >= 1 and c >= 1
                and k % r == 0 and k % c == 0):
            raise ValueError(f"sparse_block must be (r, c) with r and c dividing k = {k}, "
                             f"not {self.sparse_block!r}")
        for name in ("act_depth", "imem_depth", "sparse_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 1 << 16:
                raise ValueError(f"{name} must be an integer from 1 to 65536, not {value!r}")
        if not isinstance(self.tables, int) or not 0 <= self.tables <= 1 << 16:
            raise ValueError(f"tables must be an integer from 0 to 65536, not {self.tables!r}")
        if self.pwl_segments not in (8, 16, 32, 64, 128):
            raise ValueError(f"pwl_segments must be a power of 2 from 8 to 128, "
                             f"not {self.pwl_segments!r}")
        check_width("pwl_slope_width", self.pwl_slope_width)
        if not isinstance(self.pwl_icept_width, int) or not 2 <= self.pwl_icept_width <= 48:
            raise ValueError(f"pwl_icept_width must be an integer from 2 to 48, "
                             f"not {self.pwl_icept_width!r}")
        if not isinstance(self.sparse_engine, bool):
            raise ValueError(f"sparse_engine must be True or False, not {self.sparse_engine!r}")

    @property
    def k(self) -> int:
        return self.engine.k

    @property
    def vector_words(self) -> int:
        """Words the vector unit takes each cycle: ``vector_width``, or ``k``."""
        return self.vector_width or self.engine.k
