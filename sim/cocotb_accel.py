"""cocotb side: run a Program on the accelerator under Verilator, through the host port.

Runs inside the simulator (see :func:`circa.sim.accel_rtl.run`); never collected by pytest.
Parameters from :func:`~circa.sim.verilator.sim_params` (command words as JSON integers):

``load``      commands that load the Program
``inputs``    per sample, the commands that write its input
``reads``     commands that read the output region (responses: one block each)
``counters``  commands that read the performance counters
``timeout``   cycles one run may take before it is declared hung

Writes back ``outputs`` (per sample, the read responses), ``counters`` (per sample) and
``status`` (per sample: ``[error, pc]``).
"""
import cocotb
from cocotb.triggers import FallingEdge, First, RisingEdge, Timer

from circa.sim.streams import cocotb_port, cocotb_recv, cocotb_send
from circa.sim.verilator import CLOCK_PERIOD_NS, sim_params, start_clock_and_reset, write_result

START = 7   # Host.START


async def exchange(dut, cmd, rsp, words):
    """Send commands; return the responses of those that read."""
    reads = sum(1 for w in words if (w & 0xF) in (6, 8, 9))
    receiver = cocotb.start_soon(cocotb_recv(dut.clk, rsp, reads))
    await cocotb_send(dut.clk, cmd, words)
    return await receiver


@cocotb.test()
async def run_program(dut):
    params = sim_params()
    cmd, rsp = cocotb_port(dut, "host_cmd"), cocotb_port(dut, "host_rsp")
    cmd.valid.value = 0
    rsp.ready.value = 0
    await start_clock_and_reset(dut)
    await exchange(dut, cmd, rsp, params["load"])
    outputs, counters, status = [], [], []
    for words in params["inputs"]:
        await exchange(dut, cmd, rsp, words + [START])    # START clears done
        if not int(dut.done.value):
            await First(RisingEdge(dut.done), Timer(params["timeout"] * CLOCK_PERIOD_NS, "ns"))
        if not int(dut.done.value):
            status.append([2, int(dut.pc.value)])       # hung: report, don't wait forever
            break
        await FallingEdge(dut.clk)
        status.append([int(dut.error.value), int(dut.pc.value)])
        outputs.append(await exchange(dut, cmd, rsp, params["reads"]))
        counters.append(await exchange(dut, cmd, rsp, params["counters"]))
    write_result(outputs=outputs, counters=counters, status=status)
