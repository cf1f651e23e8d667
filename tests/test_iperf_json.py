"""iperf3's JSON, parsed from real documents (iperf3 3.12 on loopback, tests/data/iperf3/)."""

import json
from pathlib import Path

import pytest

from netconform.perf.iperf import ToolError, sample_of

DATA = Path(__file__).parent / "data" / "iperf3"


def parse(name: str):
    raw = (DATA / name).read_text()
    return sample_of(json.loads(raw), raw, 2.0), json.loads(raw)


def test_tcp_takes_the_receivers_rate_and_the_senders_retransmits():
    sample, doc = parse("tcp.json")
    assert sample.bits_per_second == doc["end"]["sum_received"]["bits_per_second"]
    assert sample.retransmits == doc["end"]["sum_sent"]["retransmits"]
    assert sample.lost_percent is None and sample.jitter_ms is None


def test_parallel_streams_sum():
    sample, doc = parse("tcp-parallel.json")
    assert doc["start"]["test_start"]["num_streams"] == 4
    assert sample.bits_per_second == doc["end"]["sum_received"]["bits_per_second"]
    assert sample.retransmits == doc["end"]["sum_sent"]["retransmits"]


def test_udp_has_the_receivers_loss_and_jitter():
    """iperf3 3.11+ writes ``sum_received`` for UDP too: it must still be read as UDP."""
    sample, doc = parse("udp.json")
    received = doc["end"]["sum_received"]
    assert "sum_received" in doc["end"]  # the shape that made UDP look like TCP
    assert sample.lost_percent == received["lost_percent"] > 0
    assert sample.jitter_ms == received["jitter_ms"] > 0
    assert sample.retransmits is None
    assert sample.bits_per_second == pytest.approx(
        received["bits_per_second"] * (1 - received["lost_percent"] / 100))


def test_udp_before_3_11_reads_sum():
    _, doc = parse("udp.json")
    del doc["end"]["sum_received"]
    sample = sample_of(doc, "", 2.0)
    assert sample.lost_percent == doc["end"]["sum"]["lost_percent"]


def test_loss_above_100_percent_is_the_tools_error_never_a_figure():
    """A real iperf3 3.12 document (UDP at 300 Mbit/s with -O 2 through a 100 Mbit/s router,
    esnet/iperf#1489): lost_percent 134, from which goodput would come out negative."""
    raw = (DATA / "udp-loss-over-100.json").read_text()
    doc = json.loads(raw)
    assert doc["end"]["sum_received"]["lost_percent"] > 100
    with pytest.raises(ToolError, match=r"iperf3 reported lost_percent 134\.\d+ \(outside 0-100: "
                                        r"69600 of 51781 datagrams\): the tool's error, not a figure"):
        sample_of(doc, raw, 2.0)
