"""The benchmark report as users read it: compare files, Allure HTML with history, in a browser."""

from __future__ import annotations

import functools
import http.server
import json
import math
import shutil
import statistics
import subprocess
import threading

import pytest

from netconform.reporting.allure import generate

from .conftest import REPO, run_pytest

pytestmark = pytest.mark.lab
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--virtual-time-budget=15000"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """A short real bench run of two schemes and a topology whose paths bridge's measure (6
    samples of 0.1 s, the fewest with an interval; parallel streams too), with Allure results
    and compare files."""
    out = tmp_path_factory.mktemp("run")
    result = run_pytest("-m", "bench", "--topology=bridge,container,vxlan", "--bench-samples=6",
                        "--bench-max-samples=6", "--bench-seconds=0.1", "--bench-streams=2", f"--report-dir={out}",
                        f"--alluredir={out}/allure-results", "suites")
    assert result.returncode == 0, result.stdout[-3000:]
    return out


def test_compare_json_has_every_path_with_its_figures(bench_run):
    data = json.loads((bench_run / "compare.json").read_text())
    assert data["schema"] == 2 and {"kernel", "iperf3", "docker"} <= data["versions"].keys()
    paths = {(r["topology"], r["path"]) for r in data["records"]}
    assert {("bridge", "same-host"), ("bridge", "to-ext"), ("vxlan", "cross-host"),
            ("vxlan", "underlay"), ("vxlan", "ext-to-published")} <= paths
    for record in data["records"]:
        assert {"median", "min", "max", "ci95", "ratio_to_baseline", "cpu_bound", "mtu",
                "provider", "runtime", "topology", "scheme"} <= record.keys()
        assert {"kernel", "iperf3", "docker"} <= record["versions"].keys()
    assert {b["metric"] for b in data["baseline"]} >= {"tcp", "tcp-parallel", "udp", "icmp-rtt"}
    every = data["baseline"] + [r for r in data["records"] if not r["same_path_as"]]
    assert all(r["error"] is None for r in every), [r["error"] for r in every if r["error"]]
    udp = [r for r in every if r["metric"] == "udp"]
    assert udp and all(None not in r["extra"]["lost_percent"] + r["extra"]["jitter_ms"] for r in udp)
    # The median's interval from 6 samples on; none below, none for one series (latency).
    assert all((r["ci95"] is None) == (r["n"] < 6 or r["unit"] == "us") for r in every)
    # Nothing iperf3 cannot have meant: no negative rate, loss within 0-100 %.
    assert all(r["median"] >= 0 and r["min"] >= 0 for r in every)
    assert all(0 <= lost <= 100 for r in udp for lost in r["extra"]["lost_percent"])
    # UDP offered at half the path's TCP or of the UDP ceiling (the veth pair's), the lesser.
    ceiling, = {r["extra"]["udp_ceiling"] for r in udp}
    tcp = {(r["lab"], r["path"]): r["median"] for r in every if r["metric"] == "tcp"}
    assert ceiling and all(r["extra"]["rate"] == int(min(tcp[r["lab"], r["path"]], ceiling) * 0.5) for r in udp)
    assert all(r["extra"]["round_trips"] == r["n"] > 1 for r in every if r["unit"] == "us")
    assert (bench_run / "throughput.svg").read_text().startswith("<svg")


def test_a_datapath_is_measured_once_and_referred_to(bench_run):
    """container's paths are bridge's (Docker's default bridge, same engine and ends): its
    records name bridge's and carry no figures of their own; vxlan's are its own."""
    data = json.loads((bench_run / "compare.json").read_text())
    container = [r for r in data["records"] if r["topology"] == "container"]
    assert {r["path"] for r in container} == {"same-host", "to-ext"}
    assert all(r["same_path_as"]["topology"] == "bridge" and r["median"] is None for r in container)
    bridge = {(r["path"], r["metric"]) for r in data["records"] if r["topology"] == "bridge"}
    assert {(r["path"], r["metric"]) for r in container} == bridge
    assert not any(r["same_path_as"] for r in data["records"] if r["topology"] in ("bridge", "vxlan"))
    assert "same datapath as bridge (c1 -> c2), measured there" in (bench_run / "compare.md").read_text()


def test_tcp_ratios_are_measured_as_pairs_and_differences_stated(bench_run):
    """Each TCP figure's ratio is the Hodges-Lehmann estimate of its pairs' log ratios (a path
    sample, then a veth sample), with its own interval; one stream's client and server share the
    last core, parallel streams' take one each; UDP and latency have no ratio (not measured as
    pairs); the report states, for each two comparable records, a difference or that none is
    detectable."""
    data = json.loads((bench_run / "compare.json").read_text())
    measured = [r for r in data["records"] if not r["same_path_as"] and not r["error"]]
    for r in measured:
        if r["metric"] in ("tcp", "tcp-parallel"):
            k, veth = r["extra"]["references_per_pair"], r["extra"]["reference_samples"]
            means = [math.prod(veth[i:i + k]) ** (1 / k) for i in range(0, len(veth), k)]
            logs = [math.log(a / b) for a, b in zip(r["samples"], means, strict=True)]
            walsh = sorted((x + y) / 2 for i, x in enumerate(logs) for y in logs[i:])
            # 6 pairs (--bench-max-samples), up to 9 where that would meet the precision target.
            assert r["n"] == len(logs) and len(walsh) == len(logs) * (len(logs) + 1) // 2
            assert r["ratio_to_baseline"] == pytest.approx(math.exp(statistics.median(walsh)))
            # The exact 95 % Wilcoxon interval leaves out, at each end, the signed-rank table's critical
            # value plus one of the averages (n = 6: none but the extremes).
            outside = {6: 1, 7: 3, 8: 4, 9: 6}[len(logs)]
            assert r["ratio_ci95"] == pytest.approx([math.exp(walsh[outside - 1]), math.exp(walsh[-outside])])
            assert r["extra"]["cores"] == ("client and server on cpu1, the harness and the lab off it" if r["metric"] == "tcp"
                                           else "client on cpu0, server on cpu1")
        else:
            assert r["ratio_to_baseline"] is None and r["ratio_ci95"] is None
    same_host = [d for d in data["differences"] if d["path"] == "same-host" and d["metric"] == "tcp"]
    assert [{d["slower"].split(" (")[0], d["than"].split(" (")[0]} for d in same_host] == [{"bridge", "vxlan"}]
    text = (bench_run / "compare.md").read_text()
    assert "same-host tcp: " in text and ("slower than" in text or "no difference detectable" in text)
    assert "The veth pair over the run" in text and "variation, most (next to)" in text


def test_html_report_keeps_history(bench_run, tmp_path):
    if shutil.which("npm") is None and shutil.which("allure") is None:
        pytest.skip("the Allure report needs Node.js and npm (apt: nodejs npm)")
    generate([bench_run], tmp_path)
    index = generate([bench_run], tmp_path)
    assert index.exists()
    assert len((tmp_path / "history" / "history.jsonl").read_text().splitlines()) == 2


def test_report_shows_the_scheme_comparison_in_a_browser(bench_run, tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("needs Debian's chromium for the headless browser check")
    if shutil.which("npm") is None and shutil.which("allure") is None:
        pytest.skip("the Allure report needs Node.js and npm (apt: nodejs npm)")
    index = generate([bench_run], tmp_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    screenshot = REPO / "reports" / "allure-report.png"
    try:
        dom = subprocess.run([*CHROMIUM, f"--user-data-dir={tmp_path}/profile-1", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120).stdout
        subprocess.run([*CHROMIUM, f"--user-data-dir={tmp_path}/profile-2", "--window-size=1400,900",
                        f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    finally:
        server.shutdown()
    for group in ("scheme local", "scheme vxlan", "comparison across schemes"):
        assert group in dom, f"the report does not show {group!r}"
    assert screenshot.stat().st_size > 10_000
