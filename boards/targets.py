"""Board targets: an amaranth-boards platform, its device's resources, default clock and baud.

Device figures are the vendors' data sheets (Lattice ECP5/ECP5-5G family data sheet
FPGA-DS-02012, iCE40 UltraPlus data sheet FPGA-DS-02008): LUT4s, flip-flops, 18x18
multipliers (iCE40: 16x16 SB_MAC16), and block RAMs (ECP5 DP16KD of 18 Kbit, iCE40 EBR of
4 Kbit).
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth_boards.ecpix5 import ECPIX585Platform
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_25F_Platform, ULX3S_85F_Platform


@dataclass(frozen=True)
class Device:
    name: str
    family: str            # "ecp5" | "ice40"
    luts: int
    ffs: int
    multipliers: int
    brams: int
    bram_kbits: int        # per block RAM

    @property
    def multiplier_width(self) -> int:
        return 18 if self.family == "ecp5" else 16


LFE5U_85F = Device("LFE5U-85F", "ecp5", 83_640, 83_640, 156, 208, 18)
LFE5U_25F = Device("LFE5U-25F", "ecp5", 24_288, 24_288, 28, 56, 18)
LFE5UM5G_85F = Device("LFE5UM5G-85F", "ecp5", 83_640, 83_640, 156, 208, 18)
ICE40UP5K = Device("iCE40UP5K", "ice40", 5_280, 5_280, 8, 30, 4)


@dataclass(frozen=True)
class Target:
    name: str
    platform: type
    device: Device
    freq_hz: float         # default clock (a PLL makes it from the board's oscillator)
    baud: int = 1_000_000
    note: str = ""

    def make_platform(self):
        # Only prepare() is used (circa runs the tools itself), so the programming tools
        # amaranth-boards lists as required (openFPGALoader, iceprog) are not needed.
        return self.platform()


TARGETS = {t.name: t for t in [
    Target("ulx3s-85f", ULX3S_85F_Platform, LFE5U_85F, 50e6,
           note="Radiona ULX3S with the 85F: the default"),
    Target("ulx3s-25f", ULX3S_25F_Platform, LFE5U_25F, 50e6,
           note="ULX3S with the 25F: small configurations, CI's bitstream"),
    Target("ecpix5-85f", ECPIX585Platform, LFE5UM5G_85F, 50e6, note="LambdaConcept ECPIX-5 85F"),
    Target("icebreaker", ICEBreakerPlatform, ICE40UP5K, 24e6,
           note="1BitSquared iCEBreaker (iCE40UP5K), 24 MHz from its 12 MHz oscillator"),
]}
DEFAULT = "ulx3s-85f"


def target(name: str) -> Target:
    try:
        return TARGETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; choose one of "
                         f"{', '.join(TARGETS)}") from None
