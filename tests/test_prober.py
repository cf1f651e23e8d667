"""The prober and its pacing: answers that do not depend on how many probes run at once."""

import re
import shlex
import subprocess
import threading
import time
from types import SimpleNamespace

from netconform import image, measure
from netconform.expect import Probe
from netconform.pacing import Pacer
from netconform.result import Result


def _in_netns(script: str) -> list[str]:
    """Run ``script`` in a throwaway network namespace (loopback only); its output lines."""
    done = subprocess.run(["unshare", "--net", "sh", "-c", "ip link set lo up\n" + script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_prober_reads_whoami_answers_resets_and_echo_replies(tmp_path):
    prober = image.prober()
    lines = _in_netns(f"{prober} serve 80 $(hostname) {tmp_path}/80 & a=$!; {prober} serve 81 named {tmp_path}/81 & "
                      "sleep 0.2\n"
                      f"{prober} 2000 2 tcp:127.0.0.1:80 tcp:127.0.0.1:82 icmp:127.0.0.1 tcp:127.0.0.1:81\n"
                      "kill $a $!")
    assert lines[0] == "prober 2"
    outcome = {line.split()[0]: line.split(" ", 3)[1:] for line in lines[1:5]}
    assert outcome["0"][:2] == ["ok", "1"] and outcome["0"][2].endswith("peer=127.0.0.1 port=80")
    assert outcome["1"][:2] == ["fail", "2"] and outcome["2"] == ["ok", "1", "reply"]
    assert re.fullmatch(r"refused ports=[1-9][0-9]*,[1-9][0-9]*", outcome["1"][2])  # each attempt's own flow
    assert outcome["3"] == ["ok", "1", "name=named peer=127.0.0.1 port=81"]
    assert lines[5].startswith("done probes=4 inflight=2 ") and "wait_ms=2000" in lines[5]


def test_a_flows_lost_first_packet_cannot_make_a_blocked_verdict(tmp_path):
    """Each source's first SYN and first echo to the target are dropped (a lossy link, a full ARP
    queue, a conntrack race): the second, independent attempt reaches, and says it was the second."""
    prober = image.prober()
    drop_first = ("iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
                  "iptables -A INPUT -p {p} -m recent --name first{p} --rcheck -j ACCEPT\n"
                  "iptables -A INPUT -p {p} -m recent --name first{p} --set -j DROP\n")
    lines = _in_netns(drop_first.format(p="tcp") + f"{prober} serve 80 me {tmp_path}/80 & sleep 0.2\n"
                      f"{prober} 2000 8 tcp:127.0.0.1:80\nkill $!")
    assert lines[1].startswith("0 ok 2 name=me "), lines


def test_a_silent_probe_rests_on_two_full_waits_and_a_listener_that_says_nothing_is_reached():
    """An address that never answers is given two attempts of the whole wait (so about 2.5 s, never
    less); a listener that accepts and closes without a word is an open port."""
    prober = image.prober()
    script = ("ip link add d0 type veth peer name d1 && ip link set d0 up && ip addr add 10.9.0.1/24 dev d0\n"
              "busybox nc -ll -p 9000 -e true & sleep 0.2\n"
              "s=$(date +%s%N); {p} 1500 8 tcp:10.9.0.2:80 icmp:10.9.0.2 tcp:127.0.0.1:9000; "
              "echo $(( ($(date +%s%N) - s) / 1000000 ))\nkill $!")
    lines = _in_netns(script.format(p=prober))
    outcome = {line.split()[0]: line.split(" ", 3)[1:] for line in lines[1:4]}
    assert outcome["0"][:2] == ["fail", "2"] and outcome["0"][2].startswith("timeout ports=")
    assert outcome["1"] == ["fail", "2", "timeout"]  # icmp: no ports
    assert outcome["2"] == ["ok", "1", "handshake"]
    assert int(lines[-1]) >= 1500 + 500


def test_udp_probes_are_answered_and_their_arrivals_recorded_at_the_target(tmp_path):
    """The server answers a probe datagram from the address it was sent to and notes its sender;
    with the answers dropped on the way back, the probe is not reached but the arrival is on
    record (what measure.arrivals reads as a one-way leak)."""
    prober, log = image.prober(), tmp_path / "arrivals"
    lines = _in_netns(f"{prober} serve 80 me {log} & a=$!; sleep 0.2\n"
                      f"{prober} -n c1/t1 2000 4 udp:127.0.0.1:80 udp:127.0.0.1:82\n"
                      "iptables -A OUTPUT -p udp --sport 80 -j DROP\n"
                      f"{prober} -n c2/t1 1000 4 udp:127.0.0.1:80\nkill $a")
    outcome = [line.split(" ", 3) for line in lines if line[:1].isdigit()]
    assert ["0", "ok", "1", "name=me peer=127.0.0.1 port=80"] in outcome
    # A failed UDP probe names each attempt's source port, as TCP does (how the trace finds it).
    failed = {(o[0], o[3].split(" ")[0]): o[3] for o in outcome if o[1] == "fail"}
    assert set(failed) == {("1", "refused"), ("0", "timeout")}
    assert all(re.fullmatch(r"\S+ ports=[1-9][0-9]*,[1-9][0-9]*", why) for why in failed.values())
    arrived = set(log.read_text().splitlines())
    assert {"c1/t1 127.0.0.1", "c2/t1 127.0.0.1"} <= arrived


class LosingExec:
    """A container whose engine's exec loses the verdicts of what the prober says and keeps its
    header and "done" (as Docker 20.10 and 28.5 did in CI); the prober runs for real, on the
    loopback of a namespace of its own, its transcript in ``transcript`` (None: there is none)."""
    kind = "container"

    def __init__(self, transcript):
        self.transcript, self.runs = transcript, 0

    def exec(self, argv, timeout=30, input=None):
        where = str(self.transcript or "/dev/null")
        argv = [where if a == measure.TRANSCRIPT else a for a in argv]
        if argv[0] == "cat":
            if self.transcript is None or not self.transcript.exists():
                return Result(tuple(argv), 1, "", f"cat: {measure.TRANSCRIPT}: No such file", 0.0)
            return Result(tuple(argv), 0, self.transcript.read_text(), "", 0.0)
        self.runs += 1
        script = "ip link set lo up; exec " + shlex.join([str(image.prober()), *argv[1:]])
        done = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True)
        said = "".join(line for line in done.stdout.splitlines(keepends=True) if not line[:1].isdigit())
        return Result(tuple(argv), done.returncode, said, done.stderr, 0.0)


def test_verdicts_an_engine_lost_from_a_containers_prober_are_read_from_its_transcript(tmp_path):
    probes = [Probe("web", "lo", "127.0.0.1", "icmp"), Probe("web", "lo", "127.0.0.1", "tcp", 1)]
    node = LosingExec(tmp_path / "transcript")
    said = measure._probe_from(SimpleNamespace(node=lambda name: node), "web", probes, 4)
    assert node.runs == 1
    assert [line.split(" ")[:3] for line in said.splitlines()[1:3]] == [["0", "ok", "1"], ["1", "fail", "2"]]
    # Without a transcript to read, the prober is run again once and its probes stay unmeasured.
    node = LosingExec(None)
    said = measure._probe_from(SimpleNamespace(node=lambda name: node), "web", probes, 4)
    assert node.runs == 2 and said.splitlines()[1].startswith("done ")


def test_pacer_flushes_between_sources_when_the_table_would_overflow():
    flushed = []
    pacer = Pacer(100, lambda: flushed.append(time.monotonic()))
    running, most = [0], [0]
    lock = threading.Lock()

    def source(cost):
        pacer.admit(cost)
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        pacer.release()

    threads = [threading.Thread(target=source, args=(40,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 2  # 40 + 40 fit in 100; a third waits for a flush
    assert pacer.flushes == len(flushed) == 2


def test_pacer_runs_a_source_larger_than_the_budget_alone_and_without_a_limit_never_waits():
    pacer = Pacer(100, lambda: None)
    pacer.admit(500)
    assert pacer.running == 1
    pacer.release()
    free = Pacer(None, lambda: None)
    for _ in range(10):
        free.admit(10_000)
    assert free.running == 10 and free.flushes == 0
