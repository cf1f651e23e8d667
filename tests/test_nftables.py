"""netavark's nftables table, as netavark 1.14 and 2.0 wrote it (tests/data/netavark), walked like
iptables rules: the NAT and isolation each version applies, named by the rule that decides."""

import json
from pathlib import Path

import pytest

from netconform.checks import nftables
from netconform.checks.chains import Packet, applies

DATA = Path(__file__).parent / "data" / "netavark"
HOST, EXT, C1, OTHER = "198.18.0.1", "198.18.0.100", "10.88.0.2", "10.89.0.2"


def table(version: str, kind: str) -> list[str]:
    return nftables.lines(json.loads((DATA / f"netavark-{version}.json").read_text()), kind)


@pytest.mark.parametrize("version", ["1.14", "2.0"])
def test_published_port_is_dnat_to_the_container(version):
    step = applies(table(version, "nat"), "PREROUTING",
                   Packet("tcp", EXT, HOST, 8080, iif="eth0", local=frozenset({HOST})))
    assert (step.target, step.to) == ("DNAT", f"{C1}:80")
    assert step.rule.startswith("-A nv_2f259bab_10_88_0_0_nm16_dnat ")
    other_port = applies(table(version, "nat"), "PREROUTING",
                         Packet("tcp", EXT, HOST, 8081, iif="eth0", local=frozenset({HOST})))
    assert other_port.target == "ACCEPT" and other_port.rule.startswith("policy of PREROUTING")


@pytest.mark.parametrize("version", ["1.14", "2.0"])
def test_leaving_the_network_is_masqueraded_and_inside_it_is_not(version):
    out = applies(table(version, "nat"), "POSTROUTING", Packet("tcp", C1, EXT, 80, oif="eth0"))
    assert out.target == "MASQUERADE" and "! -d 224.0.0.0/4" in out.rule
    inside = applies(table(version, "nat"), "POSTROUTING", Packet("tcp", C1, "10.88.0.3", 80, oif="podman0"))
    assert inside.target == "ACCEPT" and "-d 10.88.0.0/16" in inside.rule


def test_netavark_2_isolates_the_network_and_1_14_does_not():
    arriving = Packet("tcp", OTHER, C1, 80, iif="podman1", oif="podman0")
    assert applies(table("2.0", "filter"), "FORWARD", arriving).rule == "-A NETAVARK-ISOLATION-2 -o podman0 -j DROP"
    assert applies(table("1.14", "filter"), "FORWARD", arriving).target == "ACCEPT"


def test_what_has_no_iptables_form_is_kept_and_taken_to_match():
    dns = next(line for line in table("1.14", "filter") if line.startswith("-A INPUT"))
    assert "-m nft --expr" in dns and '"l4proto"' in dns and dns.endswith("--dport 53 -j ACCEPT")
    assert applies(table("1.14", "filter"), "INPUT", Packet("udp", C1, "10.88.0.1", 53)).rule == dns


def test_chains_of_the_other_table_and_unreached_ones_are_left_out():
    nat = table("2.0", "nat")
    assert not any("ISOLATION" in line or line.startswith("-A FORWARD") for line in nat)
    assert not any("HOSTPORT" in line for line in table("2.0", "filter"))
