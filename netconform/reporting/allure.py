"""The HTML report: one or more runs' results merged into one Allure report with history.

``netconform report DIR [DIR ...]`` takes report directories (each with
``allure-results/`` and ``compare.json``, as ``--report-dir`` and
``--alluredir`` write them), merges the comparisons, adds the comparison
to the Allure results as an entry of its own (tables and charts attached),
and generates ``OUT/allure-report`` with Allure 3 from the npm registry (no
Java), keeping history in ``OUT/history/history.jsonl`` so trends grow run
after run.  The nightly workflow's merge job runs the same command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

from . import across
from ..image import cache_dir
from .compare import merge, write

ALLURE = "allure@3"


def allure_command() -> list[str]:
    """The Allure 3 CLI: on PATH, or installed once with npm into the cache."""
    if shutil.which("allure"):
        return ["allure"]
    prefix = cache_dir() / "allure"
    binary = prefix / "node_modules" / ".bin" / "allure"
    if not binary.exists():
        if shutil.which("npm") is None:
            raise RuntimeError("the Allure report needs Node.js and npm (apt: nodejs npm)")
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", ALLURE],
                       check=True, capture_output=True)
    return [str(binary)]


def document_entry(results: Path, files: list[Path], title: str) -> None:
    """Put a document (the comparison, a comparison across providers or engines) into the Allure results as a
    result of its own, files attached."""
    attachments = []
    for path in files:
        source = f"{uuid.uuid4()}-attachment{path.suffix}"
        shutil.copy(path, results / source)
        kind = {".svg": "image/svg+xml", ".json": "application/json"}.get(path.suffix, "text/markdown")
        attachments.append({"name": path.name, "source": source, "type": kind})
    key = title.split()[0].lower()
    result = {"uuid": str(uuid.uuid4()), "name": title,
              "fullName": f"netconform.{key}", "status": "passed", "stage": "finished",
              "historyId": f"netconform-{key}",
              "labels": [{"name": "epic", "value": "benchmarks"},
                         {"name": "feature", "value": title.lower()},
                         {"name": "suite", "value": key}],
              "attachments": attachments}
    (results / f"{result['uuid']}-result.json").write_text(json.dumps(result))


def _environments(results: Path) -> str:
    """Allure 3 environments, one per engine the results ran on (the ``engine`` label), so the
    same test on each engine sits side by side; nothing when one engine ran everything."""
    engines = set()
    for path in results.glob("*-result.json"):
        labels = json.loads(path.read_text()).get("labels", [])
        engines |= {label["value"] for label in labels if label.get("name") == "engine"}
    if len(engines) < 2:
        return ""
    # Ids take letters, digits, _ and - only: docker-28_5, named docker-28.5.
    entries = ", ".join(f"{json.dumps(name.replace('.', '_'))}: {{name: {json.dumps(name)}, matcher: "
                        f"({{labels}}) => labels.some((l) => l.name === \"engine\" && l.value === "
                        f"{json.dumps(name)})}}" for name in sorted(engines))
    return f"settings.environments = {{{entries}}};\n"


def _merge_labs(labs: dict[str, dict], more: dict[str, dict]) -> None:
    """Add runs' labs to ``labs``: a lab seen in two runs (its conformance checks in one, its
    benchmarks in another) keeps every check, and the matrix of the run that measured one."""
    for lab_id, entry in more.items():
        if lab_id not in labs:
            labs[lab_id] = entry
            continue
        known = labs[lab_id]
        known.update({k: v for k, v in entry.items() if k not in ("checks", "matrix")})
        known["checks"] = {**known["checks"], **entry["checks"]}
        known["matrix"] = entry["matrix"] or known["matrix"]


def generate(report_dirs: list[Path], out: Path) -> Path:
    """Merge runs into ``out`` and generate the HTML report; returns its index.html."""
    out.mkdir(parents=True, exist_ok=True)
    merged_results = out / "allure-results-merged"
    shutil.rmtree(merged_results, ignore_errors=True)
    merged_results.mkdir()
    comparisons, labs = [], {}
    for directory in report_dirs:
        for item in (directory / "allure-results").glob("*"):
            shutil.copy(item, merged_results / item.name)
        if (directory / "compare.json").exists():
            comparisons.append(json.loads((directory / "compare.json").read_text()))
        if (directory / "conformance.json").exists():
            _merge_labs(labs, json.loads((directory / "conformance.json").read_text())["labs"])
    merged = merge(comparisons)
    if comparisons:
        document_entry(merged_results, write(merged, out), "Comparison across schemes")
    for axis in across.AXES:
        if axis.groups(labs):
            document = across.compare(axis, labs, merged["records"])
            document_entry(merged_results, across.write(axis, document, out), axis.title)
    (out / "history").mkdir(exist_ok=True)
    config = out / "allurerc.mjs"
    settings = json.dumps({
        "name": "netconform", "output": str(out / "allure-report"),
        "historyPath": str(out / "history" / "history.jsonl"),
        # Top level: one group per scheme and the comparison across them; then topologies.
        "plugins": {"awesome": {"options": {"groupBy": ["feature", "story"]}}}})
    config.write_text(f"const settings = {settings};\n{_environments(merged_results)}"
                      "export default settings;\n")
    shutil.rmtree(out / "allure-report", ignore_errors=True)
    subprocess.run([*allure_command(), "generate", "--config", str(config), str(merged_results)],
                   check=True, capture_output=True)
    # Allure puts a single plugin's report at the top, several in folders of their own.
    return min((out / "allure-report").rglob("index.html"), key=lambda p: len(p.parts))
