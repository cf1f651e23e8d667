"""Open vSwitch bridges joined by GRE tunnels (a full mesh), plugged into docker0.

Per host, inside its namespace: an ovsdb-server and ovs-vswitchd of its
own (run dir ``/run/lab/ovs/HOST``); ``br-phy`` holding the underlay NIC
and address (userspace tunnels route through it); ``obr0`` with one GRE
port per other host, whose internal port is enslaved to docker0.  All
docker0 bridges share one network, so containers meet at L2 over GRE.
With more than two hosts the mesh would loop, so obr0 floods from the
local port to every tunnel and from a tunnel to the local port only
(split horizon).  The kernel datapath is used where the module is loaded,
the userspace one (``datapath_type=netdev``) otherwise; userspace ports
need checksum offload off in containers for TCP.
"""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

from .base import Promise, Scheme, covering

TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ethtool")
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


def datapath(site, host: str) -> str:
    """The kernel datapath where the host's kernel has the module, else the userspace one."""
    kernel = site.hosts[host].exec(["test", "-d", "/sys/module/openvswitch"]).ok
    return "system" if kernel else "netdev"


class OvsGre(Scheme):
    name = "ovs-gre"
    description = "Per-host Open vSwitch bridges joined by a full mesh of GRE tunnels."
    # Inner MTU with room for outer IP 20 + GRE 4 + inner Ethernet 14, and to spare.
    promise = Promise(crosses=True, hosts_reach_remote=True, mtu=1400, wire="gre")
    moves_underlay = True  # the NIC is a port of the switch br-phy

    def realised_in(self, site, version) -> str:
        return f"Open vSwitch, {datapath(site, site.topology.hosts[0].name)} datapath, GRE ports, split-horizon flows"

    def missing(self) -> str | None:
        tools = [t for t in TOOLS if shutil.which(t) is None]
        if tools or not OVS_SCHEMA.exists():
            return f"ovs-gre needs {', '.join(tools) or OVS_SCHEMA} (apt: openvswitch-switch, ethtool)"
        return None

    def bridge_network(self, topo, host) -> ipaddress.IPv4Network:
        return covering([topo.bridge_subnet(h.name) for h in topo.hosts])

    def before_engines(self, site) -> None:
        topo = site.topology
        if "netdev" in {datapath(site, h.name) for h in topo.hosts}:
            # A real wire carries finished checksums; a veth passes offloaded ones on, which
            # the userspace datapath (reading eth0 through AF_PACKET) cannot complete.
            site.ext.exec(["ethtool", "-K", "eth0", "tx", "off"]).check("ethtool on ext")
        for host in topo.hosts:
            run, kind = f"/run/lab/ovs/{host.name}", datapath(site, host.name)
            address, nic = topo.underlay_address(host.name), site.hosts[host.name].nic
            vsctl = f"ovs-vsctl --db=unix:{run}/db.sock"
            self._run(site, host.name, [
                f"mkdir -p {run}",
                f"ovsdb-tool create {run}/conf.db {OVS_SCHEMA}",
                f"ovsdb-server {run}/conf.db --remote=punix:{run}/db.sock --pidfile={run}/ovsdb-server.pid "
                f"--unixctl={run}/ovsdb-server.ctl --log-file={run}/ovsdb-server.log --detach",
                f"{vsctl} --no-wait init",
                f"ovs-vswitchd unix:{run}/db.sock --pidfile={run}/ovs-vswitchd.pid "
                f"--unixctl={run}/ovs-vswitchd.ctl --log-file={run}/ovs-vswitchd.log --detach",
                f"{vsctl} add-br br-phy -- set bridge br-phy datapath_type={kind}",
                f"{vsctl} add-port br-phy {nic}",
                f"ip addr del {address} dev {nic}",
                f"ip addr add {address} dev br-phy",
                "ip link set br-phy up",
                # Userspace ports do not fill in offloaded checksums: TCP needs them done in software.
                *(["ethtool -K br-phy tx off"] if kind == "netdev" else []),
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
            flood = ",".join(f"output:gre-{peer}" for peer in peers)
            script += [f"ip link set obr0 mtu {self.promise.mtu} master docker0 up",
                       "ovs-ofctl del-flows obr0",
                       f"ovs-ofctl add-flow obr0 'in_port=LOCAL,actions={flood}'"]
            script += [f"ovs-ofctl add-flow obr0 'in_port=gre-{peer},actions=LOCAL'" for peer in peers]
            self._run(site, host.name, script)

    def after_container(self, site, node) -> None:
        if datapath(site, node.host) == "netdev":
            site.netns_exec(node, ["ethtool", "-K", "eth0", "tx", "off"]).check("ethtool tx off")

    @staticmethod
    def _run(site, host: str, script: list[str]) -> None:
        run = f"/run/lab/ovs/{host}"
        env = f"export OVS_RUNDIR={run} OVS_DBDIR={run} OVS_LOGDIR={run}"
        site.hosts[host].exec(["sh", "-c", "\n".join(["set -e", env, *script])],
                             timeout=60).check(f"ovs on {host}")
