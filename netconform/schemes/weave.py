"""Weave Net: Weave's own router (``weaver``) on every host, containers attached by Weave's plugin.

Per host, in its network namespace: ``weaver`` with a mount namespace of its
own (``/sys`` remounted: it reads ``/sys/class/net``), its own working
directory (``WORKDIR/weave/HOST``, with ``weaver.pid``; ``/run/lab`` on the netns provider) and database, ``CHECKPOINT_DISABLE=1`` (no version check), a peer
name of its own (weaver derives one from a MAC address it reads, which
every lab host would share), the underlay addresses of the hosts started before it as peers,
and ``--ipalloc-range`` split between the peers by Weave's own consensus.
weaver makes the ``weave`` bridge and its own iptables rules (in front of
the engine's).  Without the kernel's openvswitch module (this machine)
every connection is "sleeve", Weave's userspace encapsulation on UDP 6783;
with it, "fastdp" (VXLAN on UDP 6784).

Containers start on the engine's default bridge, as under ``weave attach``,
and are attached to Weave with Weave's CNI plugin (``weaveutil cni-net``,
runtime-neutral: it needs only the container's network namespace), which
asks weaver's IPAM for the address and gives the container ``ethwe``.  The
engine never sees that address; ``ContainerNode.attached`` holds it, under
the network name ``weave``.  The plugin also gives the host's ``weave``
bridge an address (the containers' gateway): the host is exposed, as
``weave expose`` would.

What weaver says of itself (``/status``, ``/status/connections``,
``/status/ipam`` on its HTTP port) is the realisation the report shows.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import replace
from pathlib import Path

from .base import Promise, Scheme

BINARIES = ("weaver", "weaveutil")
HTTP = "127.0.0.1:6784"  # weaver's control API, on each host's loopback
RANGE = ipaddress.IPv4Network("10.32.0.0/12")  # Weave Net's default allocation range
DNS_DOMAIN = "weave.local."  # weaveDNS's default domain: each container is named NAME.weave.local
# Sleeve's effective MTU on a 1500-byte underlay, as weaver verifies it (/status/connections):
# its own framing costs 62 bytes.  ethwe itself gets the weave bridge's MTU (65535 here), so a
# larger packet leaves the container and weaver answers it with "fragmentation needed".
SLEEVE_MTU = 1438
PLUGINS = "/run/docker/plugins"  # where dockerd discovers legacy plugins' sockets (a fixed path)
# Fast datapath's MTU, weaver's default (net/bridge.go: GCE's 1460-byte underlay less VXLAN's and
# ESP's overheads), on the datapath and so on the weave bridge and what joins it.
FASTDP_MTU = 1376
# Whether a host's kernel can give weaver its fast datapath: the openvswitch module, loaded or loadable
# (the kernel loads it for weaver's first datapath request).
HAS_OPENVSWITCH = "test -d /sys/module/openvswitch || modprobe -n -q openvswitch 2>/dev/null"
ENCRYPTED_SLEEVE_MTU = 1414  # encrypted: NaCl's nonce and tag take 24 more (/status/connections, measured here)


def binary(name: str) -> str | None:
    """Where ``weaver`` or ``weaveutil`` is: in NETCONFORM_WEAVE_DIR, else on PATH (setup.sh
    installs both into /usr/local/bin from a shared/weave directory beside the checkout)."""
    given = os.environ.get("NETCONFORM_WEAVE_DIR")
    found = Path(given) / name if given else Path(shutil.which(name) or "/nonexistent")
    return str(found) if found.is_file() and os.access(found, os.X_OK) else None


class WeaveNet(Scheme):
    name = "weave"
    network = "weave"  # what containers are addressed on: Weave's, attached by its CNI plugin
    engine_network = "bridge"  # what the engine puts them on first (as under weave attach)
    local_datapath = None
    encrypted = False  # a network password (EncryptedWeaveNet)
    attached_by = "with Weave's CNI plugin (weaveutil cni-net)"  # for the report
    interface = "ethwe"  # the interface Weave gives a container (CNI_IFNAME)
    description = ("Weave Net 2.8: Weave's own router on every host (a full mesh, sleeve or fast "
                   "datapath), its IPAM splitting 10.32.0.0/12, containers attached by its CNI plugin.")
    # The CNI plugin gives the weave bridge an address of the host's share (the containers'
    # gateway), which exposes the host as ``weave expose`` does: hosts reach every container, and
    # so does a LAN neighbour routing Weave's range via a host (weaver's WEAVE-EXPOSE accepts it,
    # its NAT rules masquerade it).
    promise = Promise(crosses=True, hosts_reach_remote=True, ext_reaches=True, mtu=SLEEVE_MTU, wire="udp/6783")

    def missing(self) -> str | None:
        lacking = [name for name in BINARIES if binary(name) is None]
        if lacking:
            return (f"Weave Net's {' and '.join(lacking)} not found in NETCONFORM_WEAVE_DIR or on PATH: setup.sh "
                    "installs both from a shared/weave directory beside the checkout; elsewhere take them "
                    "from the weaveworks/weave:2.8.1 image (/home/weave) and set NETCONFORM_WEAVE_DIR")
        return None

    def validate(self, topo) -> list[tuple[str, str]]:
        return [(f"hosts.{h.name}.subnet", f"{topo.bridge_subnet(h.name)} overlaps Weave Net's allocation range "
                                           f"{RANGE}; allowed: a subnet outside it (the engine's bridge)")
                for h in topo.hosts if topo.bridge_subnet(h.name).overlaps(RANGE)]

    def neighbour_routes(self, topo):
        """The engines' bridges as any scheme's, and Weave's range via the first host: a neighbour
        that routes to it reaches what Weave lets through, not what a missing route stops."""
        return [*super().neighbour_routes(topo), (RANGE, topo.hosts[0].name)]

    def bridge_plan(self, topo, host):
        """The engine's own bridge keeps the LAN's MTU: Weave's is not the engine's."""
        return replace(super().bridge_plan(topo, host), mtu=1500)

    def addressing(self, topo, host):
        return None  # Weave's IPAM chooses, from its share of the range (``status``)

    def after_engines(self, site, runtime) -> None:
        topo = site.topology
        # One password a lab, in weaver's environment (its --password default), never on a command line.
        secret = f"WEAVE_PASSWORD={secrets.token_hex(16)} " if self.encrypted else ""
        for i, host in enumerate(topo.hosts, start=1):
            weaver = site.hosts[host.name].install(Path(binary("weaver")))  # static: copied to a VM as is
            work = f"{site.hosts[host.name].workdir}/weave/{host.name}"
            # The hosts started before it, as users launch Weave one host after the other: two
            # routers dialling each other at once can leave a connection "pending" for long.
            peers = " ".join(str(topo.underlay_address(h.name).ip) for h in topo.hosts[:i - 1])
            # A namespace host sees the machine's /sys until it mounts its own; a VM has its own.
            sysfs = "mount -t sysfs sysfs /sys && " if site.local_kernel else ""
            script = (f"{sysfs}mkdir -p {work} && cd {work} && echo $$ > weaver.pid && "
                      f"CHECKPOINT_DISABLE=1 {secret}exec {weaver} {self._docker_flags(site, runtime, host.name)} "
                      f"--no-discovery "
                      f"--dns-listen-address {self._dns_listen(site, host.name)} "
                      f"--name 02:00:00:00:{i // 256:02x}:{i % 256:02x} --nickname {host.name} "
                      f"--http-addr {HTTP} --status-addr 127.0.0.1:6782 --ipalloc-range {RANGE} "
                      f"--ipalloc-init consensus={len(topo.hosts)} --datapath datapath "
                      f"--db-prefix {work}/weave {peers}")
            site.hosts[host.name].spawn(["unshare", "-m", "sh", "-c", script], self._log(site, host.name))
        for host in topo.hosts:
            if not site.planned:  # a dry run's routers never answer
                self._wait_connected(site, host.name, len(topo.hosts) - 1)

    @staticmethod
    def _log(site, host: str) -> str:
        return f"{site.hosts[host].workdir}/weave-{host}.log"

    def _docker_flags(self, site, runtime, host: str) -> str:
        """weaver's view of the engine: none (containers are attached by its CNI plugin)."""
        return "--docker-api="

    def promise_on(self, site):
        """Sleeve on hosts whose kernel has no openvswitch (this machine), else the fast datapath:
        VXLAN on UDP 6784 at weaver's MTU, which weaver must then use (a fallback to sleeve is
        a failure of the wire and path-MTU checks, naming what was found)."""
        if site.planned or not all(site.hosts[h.name].exec(["sh", "-c", HAS_OPENVSWITCH]).ok
                                   for h in site.topology.hosts):
            return self.promise
        return self.fastdp_promise

    @property
    def fastdp_promise(self):
        return replace(self.promise, mtu=FASTDP_MTU, wire="udp/6784")

    def _wait_connected(self, site, host: str, peers: int, timeout: float = 60) -> None:
        """Until weaver on ``host`` has an established connection to every other peer (the others
        found through Weave's own gossip) and routes to each of them directly: connections are
        established before the topology gossip settles, and until it does a router relays
        through a third peer (measured here: h1's route to h2 via h3 right after all three
        connections were up, so a lab's first cross-host packets took h1 -> h3 -> h2)."""
        deadline, said = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            said = self.api(site, host, "/status/connections")
            established = set(re.findall(r"established\s+(?:encrypted\s+)?\S+\s+(\S+)", said))  # peer names
            if len(established) >= peers and self._direct(site, host, peers):
                return
            time.sleep(0.2)
        log = site.hosts[host].exec(["tail", "-n", "5", self._log(site, host)]).stdout.strip()
        raise RuntimeError(f"weave on {host}: {said.count('established')} of {peers} connections established "
                           f"after {timeout:.0f} s ({said.strip() or 'no answer'}); weaver's last words: {log}")

    def _direct(self, site, host: str, peers: int) -> bool:
        """Whether weaver on ``host`` routes to ``peers`` other peers, each directly (its /report's
        unicast routes: Via is the destination itself)."""
        try:
            router = json.loads(self.api(site, host, "/report"))["Router"]
        except (ValueError, KeyError):
            return False
        routes = [r for r in router.get("UnicastRoutes") or [] if r["Dest"] != router["Name"]]
        return len(routes) >= peers and all(r["Via"] == r["Dest"] for r in routes)

    def after_container(self, site, node) -> None:
        if site.topology.container(node.name).mode != "bridge":
            return
        self._attach(site, node)

    def _attach(self, site, node) -> None:
        """Attach a container the engine put on its bridge, as ``weave attach`` does: Weave's CNI
        plugin and weaveDNS's record."""
        conf = json.dumps({"cniVersion": "0.3.0", "name": "weave", "type": "weave-net"})
        env = (f"CNI_COMMAND=ADD CNI_CONTAINERID={node.id} CNI_NETNS=/proc/{node.pid}/ns/net CNI_IFNAME=ethwe "
               f"CNI_PATH=/nonexistent WEAVE_HTTP_ADDR={HTTP}")
        weaveutil = site.hosts[node.host].install(Path(binary("weaveutil")))
        done = site.hosts[node.host].exec(["sh", "-c", f"{env} {weaveutil} cni-net"], input=conf)
        done.check(f"attaching {node.name} to weave (weaveutil cni-net)")
        if site.planned:
            return
        address = json.loads(done.stdout)["ips"][0]["address"].split("/")[0]
        node.attached[self.network] = address
        # As `weave attach` does for a container named in Weave's domain (its `weave dns-add`).
        host, port = HTTP.split(":")
        put = ("exec 3<>/dev/tcp/$0/$1 && printf 'PUT %s HTTP/1.0\r\n\r\n' \"$2\" >&3 && "
               "head -n 1 <&3 | grep -q ' 20[04] '")  # weaver: 204 No Content
        site.hosts[node.host].exec(["bash", "-c", put, host, port,
                                    f"/name/{node.id}/{address}?fqdn={self.dns_name(node.name)}"],
                                   timeout=10).check(f"naming {node.name} in weaveDNS")

    def ipam_ident(self, node) -> str:
        """What weaver's IPAM files a container's address under (``/ip``): the container's ID,
        which the CNI plugin gives it."""
        return node.id

    def _dns_listen(self, site, host: str) -> str:
        """Where weaveDNS listens: the engine bridge's address where the bridge has it already (Docker
        makes docker0 at start, and ``weave launch`` binds weaveDNS there), else weaver's own default,
        every address (Podman makes its bridge at the first container, after the router starts)."""
        gateway = self.dns_address(site.topology, host)
        if site.planned:
            return f"{gateway}:53"
        held = site.hosts[host].exec(["ip", "-o", "-4", "addr", "show"]).stdout
        return f"{gateway}:53" if f" {gateway}/" in held else "0.0.0.0:53"

    def dns_address(self, topo, host: str) -> str:
        """Where weaveDNS answers on ``host``: the engine bridge's own address, the containers'
        gateway before Weave attaches them (``weave launch`` listens on docker0's)."""
        return str(self.gateway(topo, host).ip)

    @staticmethod
    def dns_name(container: str) -> str:
        return f"{container}.{DNS_DOMAIN}"

    def realised_in(self, site, version) -> str:
        """weaver's own account, per host: connections (sleeve or fastdp, MTU), IPAM's split, where
        weaveDNS listens and how many names it holds."""
        parts = []
        for host in site.topology.hosts:
            connections = re.findall(r"(established|pending|failed)\s+((?:encrypted\s+)?(?:sleeve|fastdp))\S*.*?mtu=(\d+)",
                                     self.api(site, host.name, "/status/connections"))
            ipam = self.api(site, host.name, "/status/ipam").strip().splitlines()
            mine = next((line for line in ipam if f"({host.name})" in line), "?")
            entries = re.search(r"Service: dns.*?Entries:\s*(\d+)", self.api(site, host.name, "/status"), re.S)
            parts.append(f"{host.name}: " + ", ".join(f"{' '.join(kind.split())} {state} mtu {mtu}"
                                                      for state, kind, mtu in connections)
                         + f"; IPAM {' '.join(mine.split())}; weaveDNS on "
                         f"{self.api(site, host.name, '/dns-address-port').strip() or '?'} "
                         f"({entries.group(1) if entries else '?'} names)")
        first = site.topology.hosts[0].name
        version_line = self.api(site, first, "/status").strip().splitlines()[:1]
        return (f"Weave Net router ({' '.join(version_line[0].split()) if version_line else 'version ?'}), "
                f"containers attached {self.attached_by}; weaver on {first}: {self._datapath_words(site, first)}; "
                + " | ".join(parts))

    def _datapath_words(self, site, host: str) -> str:
        """Which datapath weaver chose, in its own words: its bridge type, and why it skipped the
        fast datapath where it did ("bridge not supported": no openvswitch in the kernel)."""
        said = site.hosts[host].exec(["grep", "-E", "Skipping bridge creation|Bridge type is", self._log(site, host)]).stdout
        words = [re.sub(r"^\w+: \S+ \S+ ", "", line).strip() for line in said.splitlines()]
        return "; ".join(dict.fromkeys(words)) or "?"

    @staticmethod
    def api(site, host: str, path: str) -> str:
        """What weaver on ``host`` answers at ``path`` (JSON where it has it: ``/report`` gives
        JSON only to a client that asks for it).  busybox's wget: a VM or a user's host may have
        no other HTTP client."""
        return site.hosts[host].exec(["busybox", "wget", "-q", "-O-", "--header", "Accept: application/json",
                                      f"http://{HTTP}{path}"], timeout=10).stdout


class EncryptedWeaveNet(WeaveNet):
    """Weave Net with a network password (``weave launch --password``, here in weaver's
    ``WEAVE_PASSWORD``): the mesh's TCP and sleeve's datagrams in NaCl (fastdp: IPsec ESP), so the
    underlay carries Weave's port and no container address, and sleeve's frames lose room to the
    cipher's nonce and tag."""

    name = "weave-encrypted"
    family = "weave"
    encrypted = True
    description = ("Weave Net 2.8 with a network password: the same routers, mesh and IPAM as weave, "
                   "every connection encrypted (sleeve: NaCl; fast datapath: IPsec ESP).")
    promise = replace(WeaveNet.promise, mtu=ENCRYPTED_SLEEVE_MTU, wire="udp/6783 encrypted")

    @property
    def fastdp_promise(self):
        """Fast datapath encrypted is IPsec ESP between the hosts (its VXLAN inside), at the MTU
        weaver's default already leaves room for ESP in."""
        return replace(self.promise, mtu=FASTDP_MTU, wire="esp encrypted")


class WeavePluginNet(WeaveNet):
    """Weave Net as Docker users attached containers to it: weaver's Docker plugin (``weave
    launch`` with the plugin, which it starts by default).  weaver talks to the host's dockerd,
    serves the ``weavemesh`` network driver and IPAM (local scope) on a socket dockerd
    discovers under ``/run/docker/plugins``, and creates the ``weave`` network itself; containers are created on
    it (``docker run --network weave``), addressed by Weave's IPAM, and named in weaveDNS by the
    plugin.  The driver gives no gateway, so Docker adds each container an ``eth0`` on
    ``docker_gwbridge`` with the default route, as for an overlay network.

    The lab's hosts share one ``/run`` (one mount namespace a lab), where a second weaver would
    replace the first's ``weavemesh.sock``; each host's socket is therefore named after it
    (``weavemesh-h1.sock``, so the driver is ``weavemesh-h1``): each dockerd's ``weave`` network
    uses its own host's router.  The hosts are not exposed (nothing gives the ``weave`` bridge an
    address, as ``weave expose`` would): they reach no container on Weave's addresses, their own
    included, and nor does a neighbour routing Weave's range via a host."""

    name = "weave-plugin"
    family = "weave"
    engine_network = "weave"  # containers are created on Weave's network
    attached_by = "by Weave's Docker plugin (driver and IPAM weavemesh-HOST, network weave)"
    interface = "ethwe0"  # Docker names it from the plugin's prefix (ethwe) and an index
    crosses_like = "weave"  # the same routers, bridge and sleeve: only the attaching differs
    description = ("Weave Net 2.8 through its Docker plugin: the same routers, mesh and IPAM as weave, "
                   "containers created on the weave network its weavemesh driver serves (docker run "
                   "--network weave), hosts not exposed.")
    promise = replace(WeaveNet.promise, hosts_reach_remote=False, ext_reaches=False, host_reaches_own=False)

    @staticmethod
    def socket(host: str) -> str:
        return f"{PLUGINS}/weavemesh-{host}.sock"

    def _docker_flags(self, site, runtime, host: str) -> str:
        """The host's own dockerd, and the plugin on a socket of the host's own name only (not
        the global-scope ``weave`` driver, which was for Docker's old cluster store)."""
        return (f"--docker-api={runtime.api_endpoint(host)} --plugin --plugin-socket= "
                f"--plugin-mesh-socket={self.socket(host)}")

    def after_engines(self, site, runtime) -> None:
        for host in site.topology.hosts:  # one directory on netns hosts, one each on VMs
            site.hosts[host.name].exec(["mkdir", "-p", PLUGINS]).check(f"making {PLUGINS} on {host.name}")
        super().after_engines(site, runtime)
        if not site.planned:
            for host in site.topology.hosts:
                self._wait_network(site, runtime, host.name)

    def _wait_network(self, site, runtime, host: str, timeout: float = 30) -> None:
        """Until ``host``'s dockerd has the ``weave`` network weaver creates once its plugin serves."""
        deadline, said = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            said = site.hosts[host].exec(["sh", "-c", f"{runtime.cli(host)} network inspect -f '{{{{.Driver}}}}' "
                                                      f"{self.network}"], timeout=10)
            if said.ok:
                return
            time.sleep(0.2)
        log = site.hosts[host].exec(["tail", "-n", "5", self._log(site, host)]).stdout.strip()
        raise RuntimeError(f"weave on {host}: no '{self.network}' network on dockerd after {timeout:.0f} s "
                           f"({said.stderr.strip() if said else 'not asked'}); weaver's last words: {log}")

    def _attach(self, site, node) -> None:
        """Nothing to do: the engine attached it through the plugin, which also named it in weaveDNS."""

    def ipam_ident(self, node) -> str:
        """The address the engine holds for the container: Docker's IPAM API names no container,
        and weaver files such an allocation under the address itself (ipam/allocate.go)."""
        return node.addresses.get(self.network, "")
