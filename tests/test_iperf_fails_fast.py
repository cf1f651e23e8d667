"""A path that drops the test's connection is reported at once, not after minutes of retries."""

import pytest

from netconform.perf import iperf
from netconform.perf.baseline import veth_pair
from netconform.result import CommandError

pytestmark = pytest.mark.lab


def test_a_path_dropping_tcp_fails_on_the_first_attempt():
    with veth_pair() as (a, b):
        b.exec(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(iperf.PORT), "-j", "DROP"]).check("drop")
        tries = []
        exec_ = a.exec
        a.exec = lambda argv, **kw: tries.append(argv) or exec_(argv, **kw)
        with iperf.server(b), pytest.raises(CommandError,
                                            match="unable to connect to server: Connection timed out"):
            iperf.run(a, b.address, seconds=1)
        assert len(tries) == 1 and "--connect-timeout" in tries[0]


def test_a_path_that_carries_tcp_is_still_measured():
    with veth_pair() as (a, b):
        with iperf.server(b):
            found = iperf.run(a, b.address, size=10_000_000, cores=(0, 1))
        assert found.bits_per_second > 0
