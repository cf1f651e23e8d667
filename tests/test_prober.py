"""The prober and its pacing: answers that do not depend on how many probes run at once."""

import subprocess
import threading
import time

from netconform import image
from netconform.pacing import Pacer


def _in_netns(script: str) -> list[str]:
    """Run ``script`` in a throwaway network namespace (loopback only); its output lines."""
    done = subprocess.run(["unshare", "--net", "sh", "-c", "ip link set lo up\n" + script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_prober_reads_whoami_answers_resets_and_echo_replies():
    prober = image.prober()
    lines = _in_netns(f"{prober} serve 80 & sleep 0.2\n"
                      f"{prober} 2000 2 tcp:127.0.0.1:80 tcp:127.0.0.1:81 icmp:127.0.0.1 tcp:127.0.0.1:80\n"
                      "kill $!")
    assert lines[0] == "prober 1"
    outcome = {line.split()[0]: line.split(" ", 2)[1:] for line in lines[1:5]}
    assert outcome["0"][0] == "ok" and outcome["0"][1].endswith("peer=127.0.0.1")
    assert outcome["1"] == ["fail", "refused"] and outcome["2"] == ["ok", "reply"]
    assert outcome["3"] == outcome["0"]
    assert lines[5].startswith("done probes=4 inflight=2 ")


def test_only_probes_promised_blocked_stop_waiting_early():
    """A silent address: a '?' probe gives up soon after answers were measured, a plain one
    waits its whole timeout (so a slow but working path is never cut short)."""
    prober = image.prober()
    script = ("ip link add d0 type veth peer name d1 && ip link set d0 up && ip addr add 10.9.0.1/24 dev d0\n"
              f"{prober} serve 80 & sleep 0.2\n"
              "s=$(date +%s%N); {p} 1500 8 tcp:127.0.0.1:80 {q}tcp:10.9.0.2:80 >/dev/null; "
              "echo $(( ($(date +%s%N) - s) / 1000000 ))\n"
              "kill $!")
    quick = int(_in_netns(script.format(p=prober, q="?"))[-1])
    full = int(_in_netns(script.format(p=prober, q=""))[-1])
    assert quick < 1000 <= full, (quick, full)


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
