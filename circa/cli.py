"""The ``circa`` command.

Every subcommand prints a human-readable report on stdout, or with ``--json`` exactly one
JSON document; progress and logs go to stderr. Bad input exits with status 2 and a
message saying what is wrong and how to fix it.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from circa import progress


def _demo(args) -> tuple[dict, str, bool]:
    from circa import demo
    report = demo.run(k=args.k, lanes=args.lanes, seed=args.seed, quick=args.quick,
                      out=args.output)
    return report, demo.render(report), demo.summary_ok(report)


def _compile(args) -> tuple[dict, str, bool]:
    from circa.compiler import compile as compile_
    report = compile_.compile_model(
        args.model, args.output, scheme=args.scheme, scheme_file=args.scheme_file,
        bits=args.bits, calib=args.calib, train=args.train, no_train=args.no_train, k=args.k,
        lanes=args.lanes, seed=args.seed, vector_width=args.vector_width)
    return report, compile_.render(report), True


def _sim(args) -> tuple[dict, str, bool]:
    from circa.sim import simulate
    report = simulate.simulate(args.dir, args.inputs, args.outputs, backend=args.backend,
                               limit=args.limit)
    return report, simulate.render(report), report["bit_exact"]


def _bench_ese(args) -> tuple[dict, str, bool]:
    from circa import ese
    report = ese.run(k=args.k, lanes=args.lanes, steps=args.steps,
                     weight_bits=args.weight_bits, pwl_segments=args.pwl_segments,
                     vector_width=args.vector_width)
    return report, ese.render(report), report["bit_exact"]


def _bench(args) -> tuple[dict, str, bool]:
    from circa import bench
    report = bench.run(k=args.k, size=args.size, lanes=args.lanes, vectors=args.vectors)
    return report, bench.render(report), True


def _bench_accuracy(args) -> tuple[dict, str, bool]:
    from circa import accuracy
    report = accuracy.run(models=args.models, schemes=args.schemes, quick=args.quick,
                          seed=args.seed)
    return report, accuracy.render(report), True


ROUTERS = ("router1", "router2")
ROUTER_HELP = ("nextpnr's router (default router1; router2 is made for congested designs "
               "and may finish where router1 does not)")
RIPUP_HELP = ("with --router router2: also rip up and reroute connections that miss timing "
              "(nextpnr's --tmg-ripup; k = 8: about 99 MHz from 80-93 where it converges; "
              "give --pnr-minutes too, docs/boards.md)")
MARGIN_HELP = ("place and route for a clock PCT %% faster than the bitstream's (default 0); "
               "Fmax is still judged against --freq. With --tmg-ripup, 2 makes up the 1 %% "
               "a converging rip-up leaves short (k = 8: 100.8 MHz on one seed of two, "
               "docs/boards.md)")


def _build(args) -> tuple[dict, str, bool]:
    from circa.boards import build
    report = build.build(args.dir, args.board, freq_mhz=args.freq, baud=args.baud,
                         out=args.output, seed=args.seed, router=args.router,
                         tmg_ripup=args.tmg_ripup, pnr_minutes=args.pnr_minutes,
                         timing_margin=args.timing_margin)
    return report, build.render(report), report["timing_met"] is not False


def _bench_fpga(args) -> tuple[dict, str, bool]:
    from circa.boards import bench
    report = bench.run(ks=args.k, board=args.board, freq_mhz=args.freq or bench.GOAL_MHZ,
                       router=args.router, tmg_ripup=args.tmg_ripup, seeds=args.seed,
                       pnr_minutes=args.pnr_minutes, vector_width=args.vector_width,
                       timing_margin=args.timing_margin, lanes=args.lanes)
    return report, bench.render(report), True


def _compare(args) -> tuple[dict, str, bool]:
    from circa import compare
    report = compare.run(args.dirs, build=not args.no_build, plot=args.plot)
    return report, compare.render(report), True


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="circa", description=(
        "FPGA accelerator generator for block-circulant and block-sparse neural networks."))
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the main job, end to end on scikit-learn's digits",
                          description=(
        "Train a digits LSTM, compress it to block-circulant form, quantize, compile, check "
        "it bit-exact in Verilator on every test image, build the ULX3S-85F bitstream and "
        "compare with the published FPGA baselines (about 8 minutes on 2 cores)."))
    demo.add_argument("--k", type=int, default=4, help="block size (2..64, default 4)")
    demo.add_argument("--lanes", type=int, default=1, help="output blocks in parallel (default 1)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quick", action="store_true",
                      help="skip the bitstream and the ESE measurement (about 2 minutes)")
    demo.add_argument("-o", "--output", default="out/demo", metavar="DIR",
                      help="where everything is written (default out/demo)")
    demo.set_defaults(run=_demo)

    comp = sub.add_parser("compile", help="compress, quantize and schedule a PyTorch model",
                          description=(
        "Compile MODEL (a file written by torch.save(model); loaded with weights_only=True "
        "and an allow-list, so nothing in it runs) into a Program directory: program.bin, "
        "program.asm, memory images, compressed.pt and report.json."))
    comp.add_argument("model", metavar="MODEL")
    comp.add_argument("-o", "--output", required=True, metavar="DIR")
    comp.add_argument("--scheme", help="for every layer: circulant:K, sparse:RxC:DENSITY or "
                      "dense (default: circulant:K where a layer spans two blocks, else dense)")
    comp.add_argument("--scheme-file", metavar="FILE.toml",
                      help='per-layer schemes: [layers] "0" = "circulant:16"')
    comp.add_argument("--bits", type=int, default=16, help="data and weight width, 8..18")
    comp.add_argument("--calib", metavar="FILE.npy", help="sample inputs, the model's layout")
    comp.add_argument("--train", metavar="FILE.npz", help="labelled data: arrays x and y")
    comp.add_argument("--no-train", action="store_true", help="skip recovery training")
    comp.add_argument("--k", type=int, default=16, help="accelerator block size")
    comp.add_argument("--lanes", type=int, default=4)
    comp.add_argument("--vector-width", type=int, metavar="WORDS",
                      help="words of a block the vector unit takes a cycle (default k; "
                      "fewer: less logic, k / WORDS cycles a block)")
    comp.add_argument("--seed", type=int, default=0)
    comp.set_defaults(run=_compile)

    sim = sub.add_parser("sim", help="run a compiled Program on the RTL, bit-exact check",
                         description=(
        "Build the accelerator for DIR's AccelConfig (Verilator builds are cached per "
        "configuration), run every input of X.npy through the host port, compare every "
        "output word with the golden model, and write the dequantized outputs to Y.npy."))
    sim.add_argument("dir", metavar="DIR")
    sim.add_argument("--inputs", required=True, metavar="X.npy", help="the model's input layout")
    sim.add_argument("--outputs", metavar="Y.npy")
    sim.add_argument("--backend", choices=["verilator", "amaranth"], default="verilator")
    sim.add_argument("--limit", type=int, help="only the first N inputs")
    sim.set_defaults(run=_sim)

    bench = sub.add_parser("bench", help="engine cycles and utilisation on a large layer", description=(
        "Measure cycles per MVM of a SIZE x SIZE block-circulant layer in Verilator for "
        "several lane counts, against the ideal p*q/lanes, plus build time and sim speed."))
    bench.add_argument("--k", type=int, default=16)
    bench.add_argument("--size", type=int, default=1024)
    bench.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8])
    bench.add_argument("--vectors", type=int, default=3, help="MVMs per configuration")
    bench.set_defaults(run=_bench)

    ese = sub.add_parser("bench-ese", help="the ESE speech LSTM on the whole accelerator",
                         description=(
        "Compile the ESE LSTM (input 153, 1024 cells, projection 512) block-circulant at k, "
        "run time steps on the accelerator in Verilator, and report cycles per step against "
        "the MVM-only bound, engine utilisation and the multiplier and memory budget."))
    ese.add_argument("--k", type=int, default=16)
    ese.add_argument("--lanes", type=int, default=2)
    ese.add_argument("--vector-width", type=int, metavar="WORDS",
                     help="words the vector unit takes a cycle (default k)")
    ese.add_argument("--steps", type=int, default=4)
    ese.add_argument("--weight-bits", type=int, default=16, help="weight width (default 16)")
    ese.add_argument("--pwl-segments", type=int, default=32,
                     help="segments per activation table (default 32)")
    ese.set_defaults(run=_bench_ese)

    acc = sub.add_parser("bench-accuracy", help="accuracy of compressed, quantized models on digits",
                         description=(
        "Train an MLP, an LSTM with projection and a GRU on scikit-learn's digits; compress "
        "each to every scheme (ADMM, then projected fine-tuning), quantize to 16 and 12 bits "
        "and report float, compressed and golden-model accuracy with weight counts."))
    acc.add_argument("--models", nargs="+", choices=["mlp", "lstm", "gru"],
                     default=["mlp", "lstm", "gru"])
    acc.add_argument("--schemes", nargs="+", metavar="SCHEME",
                     default=["circulant:4", "circulant:8", "circulant:16", "sparse:4x4:0.25"],
                     help="compression schemes (default: circulant:4 circulant:8 circulant:16 "
                          "sparse:4x4:0.25)")
    acc.add_argument("--quick", action="store_true", help="fewer epochs (well under 2 minutes)")
    acc.add_argument("--seed", type=int, default=0)
    acc.set_defaults(run=_bench_accuracy)

    from circa.boards.targets import DEFAULT, TARGETS
    boards = ", ".join(f"{name} ({t.device.name})" for name, t in TARGETS.items()) + (
        ", kcu105 (Vivado project + yosys UltraScale figures; Vivado not run)")
    build = sub.add_parser("build", help="bitstream for a board (yosys, nextpnr)", description=(
        "Build the bitstream of a compiled Program's accelerator for a board: fit check, "
        "synthesis, place and route, packing; writes build_report.json with Fmax and "
        f"utilisation from the tools' reports. Boards: {boards}. Exit status 1 if the "
        "clock's timing is not met."))
    build.add_argument("dir", metavar="DIR", help="a directory written by circa compile")
    build.add_argument("--board", default=DEFAULT, help=f"default {DEFAULT}")
    build.add_argument("--freq", type=float, metavar="MHZ",
                       help="clock, also place and route's timing target (default: the "
                       "board's; nextpnr places for timing only while a target is missed, "
                       "docs/boards.md)")
    build.add_argument("--baud", type=int, help="UART baud rate (default 1000000)")
    build.add_argument("-o", "--output", metavar="OUT", help="default DIR/build-BOARD")
    build.add_argument("--seed", type=int, nargs="+", default=[1], metavar="N",
                       help="nextpnr placement seed (default 1); several: place and route "
                       "with each, side by side, and keep the fastest")
    build.add_argument("--router", choices=ROUTERS, default="router1", help=ROUTER_HELP)
    build.add_argument("--tmg-ripup", action="store_true", help=RIPUP_HELP)
    build.add_argument("--pnr-minutes", type=float, metavar="MIN",
                       help="stop place and route after MIN minutes (default: no limit)")
    build.add_argument("--timing-margin", type=float, default=0, metavar="PCT",
                       help=MARGIN_HELP)
    build.set_defaults(run=_build)

    fpga = sub.add_parser("bench-fpga", help="Fmax and utilisation of k = 8 / 16 designs",
                          description=(
        "Build an LSTM accelerator (153 inputs, 256 cells, projection 128) for each block "
        "size k and report Fmax and utilisation from the place-and-route reports "
        "(--board kcu105: yosys UltraScale figures only). Large builds: tens of minutes each."))
    fpga.add_argument("--k", type=int, nargs="+", default=[8, 16])
    fpga.add_argument("--board", default=DEFAULT)
    fpga.add_argument("--lanes", type=int, help="output blocks in parallel (default 32 / k: "
                      "the same MAC multipliers for every k)")
    fpga.add_argument("--vector-width", type=int, metavar="WORDS",
                      help="words the vector unit takes a cycle (default k)")
    fpga.add_argument("--freq", type=float, metavar="MHZ",
                      help="clock and place-and-route timing target (default 100, the goal; "
                      "nextpnr only places for timing while the target is missed)")
    fpga.add_argument("--router", choices=ROUTERS, default="router1", help=ROUTER_HELP)
    fpga.add_argument("--tmg-ripup", action="store_true", help=RIPUP_HELP)
    fpga.add_argument("--seed", type=int, nargs="+", default=[1], metavar="N",
                      help="nextpnr seeds (default 1): one synthesis, placed and routed with "
                      "each, one per core; placement moves Fmax")
    fpga.add_argument("--pnr-minutes", type=float, metavar="MIN",
                      help="stop a build's place and route after MIN minutes and report it "
                      "as not routed (default: no limit)")
    fpga.add_argument("--timing-margin", type=float, default=0, metavar="PCT",
                      help=MARGIN_HELP)
    fpga.set_defaults(run=_bench_fpga)

    cmp = sub.add_parser("compare", help="circa's designs next to published FPGA baselines",
                         description=(
        "Table (and plot) of circa's measured designs on the ESE LSTM next to ESE, C-LSTM "
        "and E-RNN (figures from circa/baselines.toml, each with its source): latency, "
        "frames/s, dense-equivalent GOPS, per DSP and per kLUT. With no DIR: measures the "
        "k = 16 and k = 8 designs (Verilator cycles, ULX3S-85F place and route, UltraScale "
        "synthesis), cached in $CIRCA_CACHE/compare. The k = 16 place and route (router2, "
        "100 MHz target) takes over an hour and has not been seen to finish here "
        "(docs/benchmarks.md); --no-build measures cycles only, in minutes."))
    cmp.add_argument("dirs", nargs="*", metavar="DIR",
                     help="measurement directories (measure.json + build/, xilinx/ reports)")
    cmp.add_argument("--no-build", action="store_true",
                     help="measure cycles only; use cached builds if there are any")
    cmp.add_argument("--plot", metavar="FILE.png", help="draw latency and GOPS/DSP bars")
    cmp.set_defaults(run=_compare)

    for command in (demo, comp, sim, bench, ese, acc, build, fpga, cmp):
        command.add_argument("--json", action="store_true", help="print one JSON document")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # torch says so on every LSTM with a projection; nothing to act on
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
    try:
        report, text, ok = args.run(args)
    except ValueError as error:
        progress.console.print(f"[red]error:[/red] {error}")
        return 2
    except RuntimeError as error:                # a tool failed; its log is named
        progress.console.print(f"[red]failed:[/red] {error}")
        return 1
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
