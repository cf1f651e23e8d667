"""What a lab host's network namespace is set to, so that it behaves like a host people run.

A fresh network namespace starts with the kernel's per-namespace defaults,
not a distribution's: no ICMP datagram sockets for anyone
(``ping_group_range = 1 0``), no reverse-path filter, and here, because
this kernel has ``br_netfilter`` built in, bridged traffic passed through
iptables in every namespace.  A verdict measured on such a host is the
lab's, not the engine's (Podman's host-mode containers could not ping, and
its containers could not reach their own published port, only because of
this).  So each host of the netns provider gets, before any engine starts,
the settings a current Debian host has after boot: ``PROFILE``, with the
file each comes from.  Only per-namespace settings (``net.*``) can differ
between hosts of one kernel; the machine-wide ones of that file
(``kernel.*``, ``fs.*``, ``vm.*``, ``net.core.default_qdisc``) are this
machine's.  A topology overrides any of them per host (``sysctl:``), and
``read`` gives what each host really had once the engines ran (an engine
may set some itself: dockerd turns ``bridge-nf-call-iptables`` on), which
the report records and deviations are matched against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .topology import Topology

DEBIAN_SYSCTL = ("Debian 13's linux-sysctl-defaults 4.12.1 (priority important, recommended by systemd), "
                 "/usr/lib/sysctl.d/50-default.conf")
BR_NETFILTER = ("br_netfilter not loaded, as on a host where nothing loaded it yet: dockerd loads it and "
                "sets bridge-nf-call-iptables=1 (moby libnetwork bridge driver, setupBridgeNetFiltering); "
                "netavark does neither. This kernel has it built in, so 0 stands for 'not loaded'")


@dataclass(frozen=True)
class Setting:
    key: str  # a sysctl key; "conf.*" means default and every interface but "all", as systemd reads it
    value: str
    source: str


PROFILE: tuple[Setting, ...] = (
    Setting("net.ipv4.ping_group_range", "0 2147483647", DEBIAN_SYSCTL),
    Setting("net.ipv4.conf.*.rp_filter", "2", DEBIAN_SYSCTL),
    Setting("net.ipv4.conf.*.accept_source_route", "0", DEBIAN_SYSCTL),
    Setting("net.ipv4.conf.*.promote_secondaries", "1", DEBIAN_SYSCTL),
    Setting("net.bridge.bridge-nf-call-iptables", "0", BR_NETFILTER),
    Setting("net.bridge.bridge-nf-call-ip6tables", "0", BR_NETFILTER),
    Setting("net.bridge.bridge-nf-call-arptables", "0", BR_NETFILTER),
)
PROFILE_NAME = "debian-13"
# What deviations and reports read back from each host (the wildcard ones by their default).
RECORDED = ("net.ipv4.ping_group_range", "net.ipv4.conf.default.rp_filter", "net.bridge.bridge-nf-call-iptables",
            "net.ipv4.ip_forward")


def settings(topo: Topology, host: str, prerequisites: tuple[Setting, ...] = ()) -> tuple[Setting, ...]:
    """What ``host`` is set to: the profile, then what the host's engine needs of it (a runtime's
    ``host_prerequisites``, as its packages or its daemon would set them on a real host), then the
    topology's own ``sysctl:`` for the host; a later one of a key wins."""
    chosen = {s.key: s for s in (*PROFILE, *prerequisites)}
    chosen.update({s.key: Setting(s.key, s.value, f"topology {topo.name}, host {host}") for s in topo.host(host).sysctl})
    return tuple(chosen.values())


def br_netfilter_loaded(by: str) -> tuple[Setting, ...]:
    """br_netfilter loaded by ``by``: the module's defaults pass bridged traffic to every table."""
    return tuple(Setting(f"net.bridge.bridge-nf-call-{t}", "1", by) for t in ("iptables", "ip6tables", "arptables"))


def script(chosen: tuple[Setting, ...]) -> str:
    """Shell that applies ``chosen`` in the namespace it runs in; fails naming the first key that
    does not exist there."""
    lines = ["set -e"]
    for s in chosen:
        path = "/proc/sys/" + s.key.replace(".", "/")
        if "/*/" in path:
            lines.append(f'for f in {path}; do case "$f" in */all/*) ;; *) echo "{s.value}" > "$f" ;; esac; done')
        else:
            # br_netfilter's settings exist only while it is loaded: absent is "not loaded" already.
            absent = ":" if s.key.startswith("net.bridge.") and s.value == "0" else \
                f'{{ echo "no such setting in this kernel: {s.key}" >&2; exit 1; }}'
            lines.append(f'if [ -e {path} ]; then echo "{s.value}" > {path}; else {absent}; fi')
    return "\n".join(lines)


def read(node) -> dict[str, str]:
    """What a host has now, for ``RECORDED`` (a missing key reads as absent)."""
    paths = " ".join("/proc/sys/" + key.replace(".", "/") for key in RECORDED)
    out = node.exec(["sh", "-c", f"for f in {paths}; do echo \"$f=$(cat $f 2>/dev/null || echo absent)\"; done"]).stdout
    found = {}
    for line in out.splitlines():
        path, _, value = line.partition("=")
        found[path.removeprefix("/proc/sys/").replace("/", ".")] = " ".join(value.split())
    return found
