"""The host port carried across the die, with no back-pressure on its wide words.

::

    bridge.cmd ─► command ─► stages ─► host_cmd    command_sent  ─► stages ─► ≠ taken: valid
    bridge.rsp ◄─ stages ◄─ response ◄─ host_rsp    command_taken ─► stages ─► = sent: ready

The bridge sits by the UART pins and the host port's words (up to k x 16 bits) reach
the scratchpad's lanes across the die. A register slice between them still has a clock
enable on every bit, driven by the far side's ``ready``: at k = 16 those enables, and the
wide words' long routes, were among the late paths (Fmax). Here only toggle bits
handshake, two-phase, as across a clock-domain crossing: a command is captured once by
the bridge's side and then travels ``stages`` plain registers (no enable, no reset)
beside the toggle that announces it. The accelerator's side offers it while the toggle
differs from its own, and flips its own when it takes it; that travels back, and the
bridge may send again once the two agree. A response is captured and announced the same
way. The words cannot change while announced: one command is in flight at a time, and a
response comes only for one.

Latency: ``stages + 1`` cycles each way; a command every ``2 * stages + 2`` cycles at most
(the UART bridge sends one per frame, hundreds of cycles apart).
"""
from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def delayed(m, name: str, value, stages: int, reset_less: bool = True):
    """``value`` through ``stages`` registers without clock enables (returns the last)."""
    for n in range(stages):
        reg = Signal(value.shape(), name=f"{name}_{n}", reset_less=reset_less)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def announced(m, name: str, source, accept, sink, stages: int):
    """``source`` -> ``sink``, one word at a time: a word is captured with a flip of the
    toggle ``sent`` when ``source.valid & accept``; both travel ``stages`` registers; the
    sink is offered the word while the toggle differs from ``taken``, which flips when the
    sink takes it. Returns ``(sent, taken)``."""
    sent, taken = Signal(name=f"{name}_sent"), Signal(name=f"{name}_taken")
    word = Signal(Value.cast(source.payload).shape(), name=name, reset_less=True)
    with m.If(source.valid & accept):
        m.d.sync += [word.eq(source.payload), sent.eq(~sent)]
    m.d.comb += [sink.valid.eq(delayed(m, f"{name}_sent", sent, stages, reset_less=False)
                               != taken),
                 sink.payload.eq(delayed(m, name, word, stages))]
    with m.If(sink.valid & sink.ready):
        m.d.sync += taken.eq(~taken)
    return sent, taken


class HostLink(wiring.Component):
    """Bridge side: ``cmd`` in, ``rsp`` out; accelerator side: ``host_cmd`` out, ``host_rsp``
    in (streams of ``cmd_shape`` and ``rsp_shape``). ``host_rsp.ready`` is always high: the
    accelerator answers only a command the bridge waits on."""

    def __init__(self, cmd_shape, rsp_shape, stages: int = 2):
        self._stages = stages
        super().__init__({
            "cmd": In(stream.Signature(cmd_shape)),
            "rsp": Out(stream.Signature(rsp_shape)),
            "host_cmd": Out(stream.Signature(cmd_shape)),
            "host_rsp": In(stream.Signature(rsp_shape)),
        })

    def elaborate(self, platform):
        m = Module()
        idle = Signal()                 # the last command has been taken: send the next
        sent, taken = announced(m, "command", self.cmd, idle, self.host_cmd, self._stages)
        m.d.comb += [idle.eq(sent == delayed(m, "command_taken", taken, self._stages,
                                             reset_less=False)),
                     self.cmd.ready.eq(idle),
                     self.host_rsp.ready.eq(1)]
        announced(m, "response", self.host_rsp, 1, self.rsp, self._stages)
        return m
