"""Open vSwitch bridges joined by GRE tunnels (a full mesh), plugged into docker0.

Per host, inside its namespace: an ovsdb-server and ovs-vswitchd of its
own (run dir ``/run/lab/ovs/HOST``); ``br-phy`` holding the underlay NIC
and address (userspace tunnels route through it); ``obr0`` with one GRE
port per other host, whose internal port is enslaved to docker0.  All
docker0 bridges share one network, so containers meet at L2 over GRE.
With more than two hosts the mesh would loop, so a tunnel's frames go to
the local port only (split horizon); frames from the local port go to
the tunnel their destination was learned behind, or to every tunnel while
it is unknown.  The kernel datapath is used where the module is loaded,
the userspace one (``datapath_type=netdev``) otherwise; userspace ports
need checksum offload off in containers for TCP.  ``Tuning`` holds the
userspace datapath's levers, which ``bench/ovs.py`` measures.
"""

from __future__ import annotations

import ipaddress
import shutil
from dataclasses import dataclass
from pathlib import Path

from .base import BRIDGE_BUILT_FIRST, Promise, Scheme, covering

TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ethtool")
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


def datapath(site, host: str) -> str:
    """The kernel datapath where the host's kernel has the module, else the userspace one."""
    kernel = site.hosts[host].exec(["test", "-d", "/sys/module/openvswitch"]).ok
    return "system" if kernel else "netdev"


@dataclass(frozen=True)
class Tuning:
    """Levers of the userspace datapath; the defaults are what measured best here
    (``bench/ovs.py`` measures each against them)."""

    # Inner MTU: room for outer IP 20 + GRE 4 + inner Ethernet 14 under the LAN's 1500, and to spare.
    inner_mtu: int = 1400
    # other_config:userspace-tso-enable: large segments through the datapath, checksums left
    # offloaded in the containers.
    userspace_tso: bool = False
    # How the NIC is a port of br-phy: "system" (AF_PACKET, polled by the main thread) or
    # "afxdp" (an AF_XDP socket, polled by PMD threads), with the XDP mode it attaches in.
    nic_type: str = "system"
    xdp_mode: str = "generic"
    # other_config:pmd-cpu-mask for PMD ports (None: OVS's choice); pmd-sleep-max lets idle
    # PMDs sleep instead of spinning a core each.
    pmd_cpu_mask: str | None = None
    pmd_sleep_max_us: int | None = None
    # Flows: learn which tunnel a MAC address is behind (True), or send every frame from the
    # local port to every tunnel (False: each other host's switch receives all of it).
    learn_macs: bool = True
    # A directory of Open vSwitch commands to use instead of the system's (a newer release),
    # and that release's database schema.
    ovs_bin: str | None = None
    ovs_schema: str | None = None

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in vars(self).items()
                         if v is not None and v != getattr(DEFAULT, k)) or "defaults"


DEFAULT = Tuning()


class OvsGre(Scheme):
    name = "ovs-gre"
    local_datapath = None
    plugs_into_engine_bridge = True  # obr0 is a port of docker0
    admin_settings = BRIDGE_BUILT_FIRST
    description = "Per-host Open vSwitch bridges joined by a full mesh of GRE tunnels."
    moves_underlay = True  # the NIC is a port of the switch br-phy

    def __init__(self, tuning: Tuning = DEFAULT) -> None:
        self.tuning = tuning
        self.promise = Promise(crosses=True, hosts_reach_remote=True, mtu=tuning.inner_mtu, wire="gre")

    def realised_in(self, site, version) -> str:
        t = self.tuning
        return (f"Open vSwitch, {datapath(site, site.topology.hosts[0].name)} datapath, GRE ports, "
                f"split-horizon {'learning' if t.learn_macs else 'flooding'} flows, inner MTU {t.inner_mtu}, "
                f"NIC port {t.nic_type}, userspace TSO {'on' if t.userspace_tso else 'off'}")

    def missing(self) -> str | None:
        tools = [t for t in TOOLS if shutil.which(t) is None]
        if tools or not OVS_SCHEMA.exists():
            return f"ovs-gre needs {', '.join(tools) or OVS_SCHEMA} (apt: openvswitch-switch, ethtool)"
        return None

    def bridge_network(self, topo, host) -> ipaddress.IPv4Network:
        return covering([topo.bridge_subnet(h.name) for h in topo.hosts])

    def before_engines(self, site) -> None:
        topo, tuning = site.topology, self.tuning
        if any(self._checksums_in_software(datapath(site, h.name)) for h in topo.hosts):
            # A real wire carries finished checksums; a veth passes offloaded ones on, which
            # the userspace datapath (reading eth0 through AF_PACKET) cannot complete.
            site.ext.exec(["ethtool", "-K", "eth0", "tx", "off"]).check("ethtool on ext")
        config = {"userspace-tso-enable": "true" if tuning.userspace_tso else None,
                  "pmd-cpu-mask": tuning.pmd_cpu_mask,
                  "pmd-sleep-max": tuning.pmd_sleep_max_us}
        config_args = " ".join(f"other_config:{k}={v}" for k, v in config.items() if v is not None)
        for host in topo.hosts:
            run, kind = f"/run/lab/ovs/{host.name}", datapath(site, host.name)
            address, nic = topo.underlay_address(host.name), site.hosts[host.name].nic
            vsctl = f"ovs-vsctl --db=unix:{run}/db.sock"
            nic_port = ("" if tuning.nic_type == "system" else
                        f" -- set interface {nic} type={tuning.nic_type} options:xdp-mode={tuning.xdp_mode}")
            self._run(site, host.name, [
                f"mkdir -p {run}",
                f"ovsdb-tool create {run}/conf.db {tuning.ovs_schema or OVS_SCHEMA}",
                f"ovsdb-server {run}/conf.db --remote=punix:{run}/db.sock --pidfile={run}/ovsdb-server.pid "
                f"--unixctl={run}/ovsdb-server.ctl --log-file={run}/ovsdb-server.log --detach",
                f"{vsctl} --no-wait init",
                # Read once when ovs-vswitchd starts (TSO) or applied as it runs (PMD layout).
                *([f"{vsctl} --no-wait set Open_vSwitch . {config_args}"] if config_args else []),
                f"ovs-vswitchd unix:{run}/db.sock --pidfile={run}/ovs-vswitchd.pid "
                f"--unixctl={run}/ovs-vswitchd.ctl --log-file={run}/ovs-vswitchd.log --detach",
                f"{vsctl} add-br br-phy -- set bridge br-phy datapath_type={kind}",
                f"{vsctl} add-port br-phy {nic}{nic_port}",
                f"ip addr del {address} dev {nic}",
                f"ip addr add {address} dev br-phy",
                "ip link set br-phy up",
                # Userspace ports do not fill in offloaded checksums: TCP needs them done in software.
                *(["ethtool -K br-phy tx off"] if self._checksums_in_software(kind) else []),
                f"ip route add default via {topo.ext_address().ip}",
                f"{vsctl} add-br obr0 -- set bridge obr0 datapath_type={kind}",
            ])

    def after_engines(self, site, runtime) -> None:
        topo = site.topology
        for host in topo.hosts:
            run = f"/run/lab/ovs/{host.name}"
            vsctl = f"ovs-vsctl --db=unix:{run}/db.sock"
            peers = [h.name for h in topo.hosts if h.name != host.name]
            script = [f"{vsctl} add-port obr0 gre-{peer} -- set interface gre-{peer} type=gre "
                      f"options:remote_ip={topo.underlay_address(peer).ip}" for peer in peers]
            script += [f"ip link set obr0 mtu {self.promise.mtu} master docker0 up", "ovs-ofctl del-flows obr0"]
            script += [f"ovs-ofctl add-flow obr0 '{flow}'" for flow in self.flows(peers)]
            self._run(site, host.name, script)

    def flows(self, peers: list[str]) -> list[str]:
        """obr0's flows: split horizon (a tunnel's frames go only to the local port, so the mesh
        cannot loop) and, with ``learn_macs``, frames from the local port to the one tunnel
        behind which their destination was seen, flooded to every tunnel only while unknown."""
        flood = ",".join(f"output:gre-{peer}" for peer in peers)
        if not self.tuning.learn_macs:
            return [f"in_port=LOCAL,actions={flood}", *(f"in_port=gre-{peer},actions=LOCAL" for peer in peers)]
        learn = ("learn(table=1,idle_timeout=300,priority=1,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
                 "output:NXM_OF_IN_PORT[])")
        return ["table=0,in_port=LOCAL,actions=resubmit(,1)",
                *(f"table=0,in_port=gre-{peer},actions={learn},LOCAL" for peer in peers),
                f"table=1,priority=0,actions={flood}"]

    def after_container(self, site, node) -> None:
        if self._checksums_in_software(datapath(site, node.host)):
            site.netns_exec(node, ["ethtool", "-K", "eth0", "tx", "off"]).check("ethtool tx off")

    def _checksums_in_software(self, kind: str) -> bool:
        """Whether ports must hand the userspace datapath finished checksums: it cannot complete
        offloaded ones unless userspace TSO makes it carry the offload through."""
        return kind == "netdev" and not self.tuning.userspace_tso

    def _run(self, site, host: str, script: list[str]) -> None:
        run = f"/run/lab/ovs/{host}"
        env = f"export OVS_RUNDIR={run} OVS_DBDIR={run} OVS_LOGDIR={run}"
        if self.tuning.ovs_bin:
            env += f" PATH={self.tuning.ovs_bin}:$PATH"
        site.hosts[host].exec(["sh", "-c", "\n".join(["set -e", env, *script])],
                             timeout=60).check(f"ovs on {host}")
