"""The hosts' packet trace read as drops (tracing.parse), from lines `nft monitor trace` printed
in a lab here; which probe a drop belongs to is proven on live labs (test_faults, test_verdicts)."""

from netconform.tracing import Drop, Packet, parse, ruleset

TRACE = """\
trace id 61c6815c ip netconform_trace prerouting packet: iif "front" ether saddr 02:42:0a:0a:01:02 ip saddr 10.10.1.2 ip daddr 10.10.2.2 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 19969 ip length 60 tcp sport 54086 tcp dport 80 tcp flags == syn tcp window 64240
trace id 61c6815c ip netconform_trace prerouting rule tcp flags & (fin | syn | rst | ack) == syn meta nftrace set 1 (verdict continue)
trace id 61c6815c ip filter FORWARD packet: iif "front" oif "back" ip saddr 10.10.1.2 ip daddr 10.10.2.2 ip dscp cs0 ip ecn not-ect ip ttl 63 ip id 19969 ip length 60 tcp sport 54086 tcp dport 80 tcp flags == syn tcp window 64240
trace id 61c6815c ip filter FORWARD rule counter packets 12 bytes 720 jump DOCKER-ISOLATION-STAGE-1 (verdict jump DOCKER-ISOLATION-STAGE-1)
trace id 61c6815c ip filter DOCKER-ISOLATION-STAGE-2 rule oifname "back" counter packets 3 bytes 180 drop (verdict drop)
trace id ca02d889 ip netconform_trace prerouting packet: iif "eth0" ip saddr 198.18.0.254 ip daddr 10.10.1.2 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 56275 ip length 51 icmp type echo-request icmp code net-unreachable icmp id 36721 icmp sequence 1
trace id ca02d889 ip filter FORWARD policy drop
trace id 0badf00d ip filter FORWARD rule drop (verdict drop)
"""


def test_a_trace_reads_as_the_drops_with_their_packets():
    assert parse("h1", TRACE) == [
        Drop("h1", Packet("10.10.1.2", "10.10.2.2", 54086, 80), 'ip filter DOCKER-ISOLATION-STAGE-2: oifname "back" drop'),
        Drop("h1", Packet("198.18.0.254", "10.10.1.2", None, None, "echo-request"), "ip filter FORWARD policy drop"),
    ]  # a verdict for a packet the trace never showed (its line lost) is not guessed at
    assert str(parse("h1", TRACE)[1]) == "h1 ip filter FORWARD policy drop"


def test_the_trace_table_marks_what_decides_reachability_and_is_ours_alone():
    table = ruleset({80, 9})
    assert table.startswith("table ip netconform_trace {")
    assert "udp dport { 9, 80 } meta nftrace set 1" in table and "udp sport { 9, 80 } meta nftrace set 1" in table
    assert table.count("priority -350") == 2  # before the raw table (Docker 28's direct-routing guard)
