"""A path that drops the test's connection is reported at once, not after minutes of retries;
a server still starting (or a proxy in front of it) is waited for, not taken for the path."""

from pathlib import Path

import pytest

from netconform.perf import bench, iperf
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


@pytest.mark.parametrize("argv", [["yes"], ["sh", "-c", "while :; do :; done"]], ids=["yes", "shell-loop"])
def test_a_sample_during_which_another_process_used_a_core_is_taken_again(argv):
    """A busy process outside the measurement (``yes``; a shell loop, whose name a wrapper of the
    measurement could also have) competes for the cores: its samples are flagged, taken again (at
    most ``repeats`` times), and the figure says why.  Without it the same series is taken without
    repeats (the check is not what makes it flag)."""
    import subprocess

    from netconform.perf.bench import Ends, Settings, series

    settings = Settings(samples=2, max_samples=2, seconds=0.1, repeats=2)
    with veth_pair() as (a, b):
        busy = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        try:
            taken = series(Ends(a, b, b.address), settings)
        finally:
            busy.kill()
            busy.wait()
    assert len(taken.repeated) == 2 and all(r.endswith("used a core meanwhile") for r in taken.repeated)
    assert f"{argv[0]} (pid {busy.pid}) used a core meanwhile" in taken.repeated
    assert len(taken.samples) == 2  # kept once the repeats were spent: flagged in extra.repeated
    with veth_pair() as (a, b):
        assert series(Ends(a, b, b.address), settings).repeated == []


def test_a_server_is_listening_before_the_first_test_and_a_port_that_never_opens_is_named(monkeypatch):
    """Behind a userland proxy a client cannot tell a server still starting from a broken path
    (the proxy accepts, then resets): the harness waits until the server's port listens, and
    a port that does not open (or close) in time is an error naming it, not a figure."""
    monkeypatch.setattr(iperf, "LISTEN_WAIT", 0.3)
    with veth_pair() as (a, b):
        with pytest.raises(CommandError, match="iperf3's server on b listening on port 5299"):
            iperf.await_port(b, 5299, True, "iperf3's server on b listening on port 5299")
        iperf.await_port(b, 5299, False, "port 5299 closed")
        with iperf.server(b, 5299):
            listening = b.exec(["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6"]).stdout
            assert ":14B3 " in listening  # 5299, without a client having tried
            with pytest.raises(CommandError, match="port 5299 closed"):
                iperf.await_port(b, 5299, False, "port 5299 closed")


def test_a_server_that_listens_late_behind_a_resetting_proxy_is_still_measured(tmp_path):
    """The race docker-proxy exposed on linux-bridge's published port, made certain: the server
    starts listening half a second after ``iperf3 -s -D`` is asked for, behind a proxy that
    resets clients while its target is closed.  Waiting for the port, the harness measures the
    path; a client that went at once would be reset (checked first, so the proxy is shown to
    break a hasty client)."""
    proxy, pidfile = Path(__file__).parent / "data" / "resetting_proxy.py", tmp_path / "proxy.pid"
    with veth_pair() as (a, b):
        real = b.exec
        real(["sh", "-c", f"python3 {proxy} 5300 {iperf.PORT} >/dev/null 2>&1 & echo $! > {pidfile}"])
        try:
            iperf.await_port(b, 5300, True, "the proxy listening")
            with pytest.raises(CommandError, match="reset by peer"):
                iperf.run(a, b.address, size=1_000_000, port=5300)
            b.exec = lambda argv, **kw: real(["sh", "-c", f"(sleep 0.5; exec {' '.join(argv)}) >/dev/null 2>&1 &"]
                                             if argv[:2] == ["iperf3", "-s"] else argv, **kw)
            with iperf.server(b):
                assert iperf.run(a, b.address, size=1_000_000, port=5300).bits_per_second > 0
        finally:
            real(["sh", "-c", f"kill $(cat {pidfile})"])


def test_iperf3_takes_a_published_port_only_once_the_paused_web_server_has_closed_it():
    """A whoami server that keeps its port 1.5 s after it is told to stop: iperf3's
    server asked for the port at once cannot bind it, the old server still listens, and the
    client reaches the whoami server instead (checked first); pausing it as the benchmarks do
    (``bench.paused_web_server``), the port is closed first and the path is measured."""
    slow, port = Path(__file__).parent / "data" / "slow_to_close.py", 5301
    pidfile = Path(f"/tmp/serve-{port}.pid")  # where the image's /serve keeps it
    with veth_pair() as (a, b):
        def start() -> str:
            pid = b.exec(["sh", "-c", f"python3 {slow} {port} 1.5 >/dev/null 2>&1 & echo $! | tee {pidfile}"]).stdout
            iperf.await_port(b, port, True, "the slow whoami server listening")
            return pid.strip()
        started = [start()]
        try:
            b.exec(["kill", started[0]])
            with pytest.raises((CommandError, iperf.ToolError)), iperf.server(b, port):
                iperf.run(a, b.address, size=1_000_000, port=port)
            iperf.await_port(b, port, False, "the slow whoami server gone")
            started.append(start())
            with bench.paused_web_server(b, port), iperf.server(b, port):
                assert iperf.run(a, b.address, size=1_000_000, port=port).bits_per_second > 0
        finally:
            for pid in started:  # ours, if still there
                b.exec(["sh", "-c", f"grep -q slow_to_close /proc/{pid}/cmdline 2>/dev/null && kill {pid}"])
            pidfile.unlink(missing_ok=True)
