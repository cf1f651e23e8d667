#!/usr/bin/env python3
"""Open vSwitch without the kernel module: which levers of the userspace datapath pay.

    python bench/ovs.py [--samples N] [--seconds S] [LEVER ...]   (default: every lever, the suite's sampling)

Builds the shipped ``ovs`` topology once per set of levers (``schemes.ovs.Tuning``)
and measures TCP across hosts (c1 -> c2, one stream) with the suite's own
iperf3 method, after the veth baseline in the same run.  Prints, per set:
the median Gbit/s and its ratio to the baseline, retransmits, what the
machine's CPU did (busiest process), and why a set could not be measured
(a lever the datapath refuses is a result, not a crash).  Target: 3 Gbit/s
with under 0.1 % retransmits.

``--release trixie`` (or ``sid``) adds the same sets on that Debian
release's Open vSwitch, unpacked into the cache with the release's own C
library and loader (its binaries need a newer glibc than Debian 12 has);
the machine's packages stay as they are.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from netconform.engines import Apt
from netconform.engines import root as engines_root
from netconform.image import cache_dir
from netconform.lab import Lab
from netconform.perf.baseline import veth_pair
from netconform.perf.bench import Ends, Settings, throughput
from netconform.result import CommandError
from netconform.schemes.ovs import DEFAULT, OvsGre, Tuning
from netconform.topology import load, resolve

TARGET_BITS, TARGET_RETRANSMIT_PERCENT = 3e9, 0.1
LEVERS: dict[str, Tuning] = {
    "flooding": replace(DEFAULT, learn_macs=False),
    "defaults": DEFAULT,
    "mtu-1450": replace(DEFAULT, inner_mtu=1450),
    "tso": replace(DEFAULT, userspace_tso=True),
    "afxdp": replace(DEFAULT, nic_type="afxdp"),
    "afxdp-pmd1": replace(DEFAULT, nic_type="afxdp", pmd_cpu_mask="0x2", pmd_sleep_max_us=50),
    "afxdp-tso": replace(DEFAULT, nic_type="afxdp", userspace_tso=True),
}


# What the release's ovs-vswitchd and tools link (ldd), with the C library whose loader runs them.
RELEASE_PACKAGES = ("openvswitch-switch", "openvswitch-common", "libc6", "libssl3t64", "libbpf1", "libxdp1",
                    "libunbound8", "libevent-2.1-7t64", "libcap-ng0", "libnuma1", "libelf1t64", "libnettle8t64",
                    "libhogweed6t64", "libgmp10", "zlib1g")
RELEASE_TOOLS = ("usr/bin/ovs-vsctl", "usr/bin/ovs-ofctl", "usr/bin/ovs-appctl", "usr/bin/ovsdb-tool",
                 "usr/sbin/ovsdb-server", "usr/lib/openvswitch-switch/ovs-vswitchd")


def release_ovs(suite: str) -> Tuning:
    """A Debian release's Open vSwitch, unpacked once into the cache: a ``bin/`` of scripts that
    run each tool under the release's own loader and libraries, and the release's schema."""
    apt = Apt(engines_root() / "apt" / suite, (suite,))
    apt.update()
    versions = tuple(zip(RELEASE_PACKAGES, apt.candidates(RELEASE_PACKAGES)))
    build = cache_dir() / "ovs" / f"{suite}-{versions[0][1]}"
    libs = build / "root/usr/lib/x86_64-linux-gnu"
    if not (build / "bin").exists():
        for deb in apt.download(versions, build / "debs"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(build / "root")], check=True)
        (build / "tmp").mkdir()
        for tool in RELEASE_TOOLS:
            script = build / "tmp" / Path(tool).name
            script.write_text(f'#!/bin/sh\nexec {libs}/ld-linux-x86-64.so.2 --library-path {libs} '
                              f'{build / "root" / tool} "$@"\n')
            script.chmod(0o755)
        (build / "tmp").rename(build / "bin")
    return replace(DEFAULT, ovs_bin=str(build / "bin"),
                   ovs_schema=str(build / "root/usr/share/openvswitch/vswitch.ovsschema"))


def measure(tuning: Tuning, settings: Settings, baseline: float) -> str:
    lab = Lab(load(resolve("ovs")[0]))
    lab.scheme = OvsGre(tuning)
    with lab:
        ends = Ends(lab.node("c1"), lab.node("c2"), lab.containers["c2"].addresses[lab.scheme.network])
        found = throughput("cross-host", ends, settings, udp=False)[0]
        if found.error or not found.summary:
            said = lab.hosts["h1"].exec(["sh", "-c", "grep -E '[|](WARN|ERR)[|]' /run/lab/ovs/h1/ovs-vswitchd.log "
                                                     "| tail -1 | cut -d'|' -f3-"]).stdout.strip()
            return f"not measured: {found.error.splitlines()[0]}; ovs-vswitchd: {said or 'no warning'}"
    return row_of(found, settings, baseline)


def row_of(found, settings: Settings, baseline: float) -> str:
    """Median and its ratio to the baseline, retransmits as a share of the full-size segments
    sent, and the machine's CPU."""
    retransmits = found.extra["retransmits"]
    segments = sum(s * settings.seconds / (8 * 1448) for s in found.samples)  # per sample: seconds of traffic
    percent = 100 * sum(retransmits) / max(1.0, segments)
    return (f"{found.summary.median / 1e9:6.2f} Gbit/s ({found.summary.median / baseline:.2f}x)  retransmits {sum(retransmits):>6} (~{percent:.2f} %)  "
            f"{found.extra['machine_cpu'][len(found.samples) // 2]}")


def version(tuning: Tuning) -> str:
    binary = Path(tuning.ovs_bin or "/usr/sbin") / "ovs-vswitchd"
    return subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.split("\n")[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("levers", nargs="*", metavar="LEVER", help=f"any of: {', '.join(LEVERS)} (default: all)")
    parser.add_argument("--samples", type=int, default=Settings.samples)
    parser.add_argument("--seconds", type=float, default=Settings.seconds)
    parser.add_argument("--release", choices=("trixie", "sid"),
                        help="also each set on this Debian release's Open vSwitch")
    args = parser.parse_args()
    unknown = [name for name in args.levers if name not in LEVERS]
    if unknown:
        parser.error(f"unknown lever {', '.join(unknown)}; allowed: {', '.join(LEVERS)}")
    settings = Settings(samples=args.samples, seconds=args.seconds)
    print(f"target: {TARGET_BITS / 1e9:.0f} Gbit/s with under {TARGET_RETRANSMIT_PERCENT} % retransmits", flush=True)
    with veth_pair() as (a, b):
        base = throughput("veth-pair", Ends(a, b, b.address), settings, udp=False)[0]
    print(f"{'baseline':>12}  {'raw veth pair':<60}  {row_of(base, settings, base.summary.median)}", flush=True)
    builds = {"system": DEFAULT}
    if args.release:
        builds[args.release] = release_ovs(args.release)
    for build, release in builds.items():
        print(f"Open vSwitch: {build} ({version(release)})", flush=True)
        for name in args.levers or LEVERS:
            tuning = replace(LEVERS[name], ovs_bin=release.ovs_bin, ovs_schema=release.ovs_schema)
            try:
                row = measure(tuning, settings, base.summary.median)
            except CommandError as err:
                row = f"refused: {str(err).splitlines()[0]}"
            print(f"{name:>12}  {LEVERS[name]!s:<60}  {row}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
