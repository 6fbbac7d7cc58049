"""Helpers for ``amaranth.lib.stream`` interfaces (``valid``, ``ready``, ``payload``).

Three groups:

* **Amaranth simulator** (``amaranth.sim``, ``sim.add_testbench(tb)`` with
  ``async def tb(ctx)``): :func:`stream_put`, :func:`stream_get` and the list
  versions :func:`stream_put_all`, :func:`stream_get_n`.  They follow the
  helpers in Amaranth's ``lib.stream`` documentation, plus optional random
  idle gaps (``rng``, ``gap``) to exercise back-pressure.
* **cocotb** (Verilator, see :mod:`circa.sim.verilator`): :func:`cocotb_port`,
  :func:`cocotb_send`, :func:`cocotb_recv`, working on packed integer words.
* **Packing**: :func:`pack` / :func:`unpack` convert between *k* signed
  integers of width *w* and one wide integer, element 0 in the least
  significant bits (the ``data.ArrayLayout`` convention).

Verilog port naming
-------------------
Amaranth flattens a stream member ``i`` of a component signature into the
top-level ports ``i__valid``, ``i__ready`` and ``i__payload``.  The payload is
always **one wide vector** (``input [31:0] i__payload`` for
``ArrayLayout(signed(8), 4)``), whatever its layout; the per-field views
(``\\i__payload[0]``, ``\\s__payload.a``) exist only as internal wires.  So on
the cocotb side a payload is a single packed integer, and struct fields sit
at their ``StructLayout`` offsets (first field in the LSBs).
"""

from __future__ import annotations

import random
from types import SimpleNamespace

__all__ = [
    "stream_put", "stream_get", "stream_put_all", "stream_get_n",
    "cocotb_port", "cocotb_send", "cocotb_recv",
    "pack", "unpack",
]


# ---------------------------------------------------------------------------
# Amaranth simulator
# ---------------------------------------------------------------------------

async def _idle(ctx, rng: random.Random | None, gap: float) -> None:
    """Wait a random number of cycles: one more cycle with probability *gap*."""
    if rng is None or gap <= 0:
        return
    while rng.random() < gap:
        await ctx.tick()


async def stream_put(ctx, stream, payload, *, rng: random.Random | None = None,
                     gap: float = 0.0) -> None:
    """Send one payload into a stream (testbench is the producer).

    Asserts ``valid`` with *payload* and waits for the clock edge at which
    ``ready`` is high, then deasserts ``valid``.

    Parameters
    ----------
    ctx : amaranth.sim.SimulatorContext
        Testbench context.
    stream : amaranth.lib.stream.Interface
        Stream whose ``valid``/``payload`` the testbench drives.
    payload : object
        Anything ``ctx.set`` accepts for the payload (an int, a list for an
        ``ArrayLayout``, a dict for a ``StructLayout``, a ``data.Const``).
    rng : random.Random, optional
        Random source for idle gaps; no gaps if None.
    gap : float
        Probability of one more idle cycle (``valid`` low) before the
        transfer; the number of idle cycles is geometric.
    """
    await _idle(ctx, rng, gap)
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, *, rng: random.Random | None = None, gap: float = 0.0):
    """Receive one payload from a stream (testbench is the consumer).

    Parameters
    ----------
    ctx : amaranth.sim.SimulatorContext
        Testbench context.
    stream : amaranth.lib.stream.Interface
        Stream whose ``ready`` the testbench drives.
    rng : random.Random, optional
        Random source for idle gaps; no gaps if None.
    gap : float
        Probability of one more cycle with ``ready`` low before accepting.

    Returns
    -------
    object
        The payload sampled at the transfer edge: an ``int`` for a plain
        shape, a ``data.Const`` for a layout (``list(p)`` for arrays,
        ``p.field`` for structs).
    """
    await _idle(ctx, rng, gap)
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def stream_put_all(ctx, stream, payloads, *, rng=None, gap: float = 0.0) -> None:
    """Send every item of *payloads* with :func:`stream_put` (same options)."""
    for p in payloads:
        await stream_put(ctx, stream, p, rng=rng, gap=gap)


async def stream_get_n(ctx, stream, n: int, *, rng=None, gap: float = 0.0) -> list:
    """Receive *n* payloads with :func:`stream_get` (same options)."""
    return [await stream_get(ctx, stream, rng=rng, gap=gap) for _ in range(n)]


# ---------------------------------------------------------------------------
# cocotb
# ---------------------------------------------------------------------------
#
# Timing discipline: all testbench writes happen right after a falling clock
# edge; after ``ReadOnly()`` the settled values (including combinational
# ``ready``/``valid`` that depend on other inputs) are exactly those the next
# rising edge will see, so "valid and ready at ReadOnly" == "transfer".

def cocotb_port(dut, name: str) -> SimpleNamespace:
    """Handles of the stream port *name* of a cocotb DUT.

    Parameters
    ----------
    dut : cocotb handle
        Top-level handle.
    name : str
        Stream member name in the Amaranth signature (e.g. ``"i"``).

    Returns
    -------
    types.SimpleNamespace
        With attributes ``valid``, ``ready``, ``payload`` bound to
        ``dut.<name>__valid`` etc.
    """
    return SimpleNamespace(valid=getattr(dut, f"{name}__valid"),
                           ready=getattr(dut, f"{name}__ready"),
                           payload=getattr(dut, f"{name}__payload"))


async def cocotb_send(clk, port, words, *, rng: random.Random | None = None,
                      gap: float = 0.0) -> int:
    """Drive packed payload *words* into a stream, with random ``valid`` gaps.

    Parameters
    ----------
    clk : cocotb handle
        Clock (``dut.clk``), already running.
    port : types.SimpleNamespace
        From :func:`cocotb_port`; the DUT's input stream.
    words : iterable of int
        Packed (unsigned) payload values, see :func:`pack`.
    rng : random.Random, optional
        Random source for gaps; no gaps if None.
    gap : float
        Per-cycle probability of ``valid`` low between transfers (``valid``
        is never dropped while a word waits for ``ready``).

    Returns
    -------
    int
        Number of clock cycles spent.
    """
    from cocotb.triggers import FallingEdge, ReadOnly

    cycles = 0
    for word in words:
        while rng is not None and gap > 0 and rng.random() < gap:
            await FallingEdge(clk)  # idle cycle
            cycles += 1
            port.valid.value = 0
        await FallingEdge(clk)
        cycles += 1
        port.valid.value = 1
        port.payload.value = word
        await ReadOnly()
        while not int(port.ready.value):  # hold valid/payload until accepted
            await FallingEdge(clk)
            cycles += 1
            await ReadOnly()
    await FallingEdge(clk)
    port.valid.value = 0
    return cycles


async def cocotb_recv(clk, port, n: int, *, rng: random.Random | None = None,
                      gap: float = 0.0, timeout_cycles: int | None = None) -> list[int]:
    """Collect *n* packed payloads from a stream, with random ``ready`` gaps.

    Parameters
    ----------
    clk : cocotb handle
        Clock (``dut.clk``), already running.
    port : types.SimpleNamespace
        From :func:`cocotb_port`; the DUT's output stream.
    n : int
        Number of payloads to collect.
    rng : random.Random, optional
        Random source for gaps; no gaps if None.
    gap : float
        Per-cycle probability of ``ready`` low.
    timeout_cycles : int, optional
        Raise ``TimeoutError`` after this many cycles (default: no limit).

    Returns
    -------
    list of int
        Payloads as unsigned integers, see :func:`unpack`.
    """
    from cocotb.triggers import FallingEdge, ReadOnly

    out: list[int] = []
    cycles = 0
    while len(out) < n:
        await FallingEdge(clk)
        cycles += 1
        if timeout_cycles is not None and cycles > timeout_cycles:
            raise TimeoutError(f"got {len(out)} of {n} payloads in {timeout_cycles} cycles")
        ready = not (rng is not None and gap > 0 and rng.random() < gap)
        port.ready.value = int(ready)
        await ReadOnly()
        if ready and int(port.valid.value):
            out.append(int(port.payload.value))
    await FallingEdge(clk)
    port.ready.value = 0
    return out


# ---------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------

def pack(values, width: int) -> int:
    """Pack integers into one wide unsigned integer, element 0 in the LSBs.

    Parameters
    ----------
    values : iterable of int
        Elements (signed or unsigned); each is taken modulo ``2**width``
        (two's complement for negative values).
    width : int
        Bits per element.

    Returns
    -------
    int
        ``sum((v mod 2**width) << (i * width))``.
    """
    mask = (1 << width) - 1
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * width)
    return word


def unpack(word: int, width: int, count: int, *, signed: bool = True) -> list[int]:
    """Split a wide integer into *count* elements of *width* bits (inverse of :func:`pack`).

    Parameters
    ----------
    word : int
        Packed value (e.g. ``int(dut.o__payload.value)``).
    width : int
        Bits per element.
    count : int
        Number of elements.
    signed : bool
        Interpret elements as two's complement.

    Returns
    -------
    list of int
        Element 0 first.
    """
    mask = (1 << width) - 1
    out = []
    for i in range(count):
        v = (int(word) >> (i * width)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out
