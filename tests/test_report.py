"""The benchmark report as users read it: compare files, Allure HTML with history, in a browser."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
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
    """A short real bench run of two schemes, with Allure results and compare files."""
    out = tmp_path_factory.mktemp("run")
    result = run_pytest("-m", "bench", "--topology=bridge,vxlan", "--bench-samples=1",
                        "--bench-seconds=1", f"--report-dir={out}", f"--alluredir={out}/allure-results",
                        "suites")
    assert result.returncode == 0, result.stdout[-3000:]
    return out


def test_compare_json_has_every_path_with_its_figures(bench_run):
    data = json.loads((bench_run / "compare.json").read_text())
    assert data["schema"] == 1 and {"kernel", "iperf3", "docker"} <= data["versions"].keys()
    paths = {(r["topology"], r["path"]) for r in data["records"]}
    assert {("bridge", "same-host"), ("bridge", "to-ext"), ("vxlan", "cross-host"),
            ("vxlan", "underlay"), ("vxlan", "ext-to-published")} <= paths
    for record in data["records"]:
        assert {"median", "min", "max", "ci95", "ratio_to_baseline", "cpu_bound", "mtu",
                "provider", "runtime", "topology", "scheme"} <= record.keys()
        assert {"kernel", "iperf3", "docker"} <= record["versions"].keys()
    assert {b["metric"] for b in data["baseline"]} >= {"tcp", "tcp-parallel", "udp", "icmp-rtt"}
    every = data["baseline"] + data["records"]
    assert all(r["error"] is None for r in every), [r["error"] for r in every if r["error"]]
    udp = [r for r in every if r["metric"] == "udp"]
    assert udp and all(None not in r["extra"]["lost_percent"] + r["extra"]["jitter_ms"] for r in udp)
    # One sample (--bench-samples=1, and UDP always) or one series (latency): no CI at all.
    assert all(r["ci95"] is None for r in every if r["n"] == 1 or r["unit"] == "us")
    assert all(r["extra"]["round_trips"] == r["n"] > 1 for r in every if r["unit"] == "us")
    assert (bench_run / "throughput.svg").read_text().startswith("<svg")


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
