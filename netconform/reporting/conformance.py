"""The run's conformance report: reports/conformance.{json,md}.

Per lab: each check's outcome and message, the time to build the lab, and
the measured reachability matrix as a grid (rows reach out, columns are
reached; ``icmp+``/``80-`` say reached or blocked, ``!`` marks a verdict
that differs from the promise).  Written at the end of the session when
``--report-dir`` is given.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..lab import Lab
from ..measure import Matrix


class Report:
    def __init__(self, directory: Path):
        self.directory = directory
        self.labs: dict[str, dict] = {}

    def _lab(self, lab_id: str) -> dict:
        return self.labs.setdefault(lab_id, {"checks": {}, "matrix": []})

    def record_lab(self, lab: Lab) -> None:
        self._describe(lab, lab.realised())
        self._lab(lab.id)["build_seconds"] = asdict(lab.phases)
        self._lab(lab.id)["host_settings"] = lab.host_settings

    def record_unbuilt(self, lab: Lab, why: str) -> None:
        """A lab its runtime cannot build (``Runtime.lacks``): in the report beside the runtimes
        that built it, its checks skipped with the reason, so a comparison shows the gap."""
        self._describe(lab, f"not built: {why}")

    def _describe(self, lab: Lab, realised: str) -> None:
        self._lab(lab.id).update(topology=lab.topology.name, description=lab.topology.description,
                                 scheme=lab.topology.scheme, realised=realised, provider=lab.provider_name,
                                 runtime=lab.runtime_name, engine=lab.runtime.facts())

    def record_matrix(self, lab: Lab, matrix: Matrix) -> None:
        self._lab(lab.id)["matrix"] = [
            {**asdict(v.probe), "promised": v.expected, "reached": v.reached, "answer": v.answer,
             "measured": v.measured, "attempt": v.attempt,
             **({"why": v.why} if v.why else {}), **({"misdirected": v.misdirected} if v.misdirected else {}),
             **({"error": v.error} if v.error else {}),
             **({"stopped_by": list(v.stopped_by)} if v.stopped_by is not None else {})}
            for v in matrix.verdicts]
        if matrix.pace:
            self._lab(lab.id)["pace"] = {**asdict(matrix.pace), "said": str(matrix.pace)}

    def described(self, lab_id: str) -> dict:
        """What the report knows of a lab besides its checks (empty if nothing)."""
        return {k: v for k, v in self.labs.get(lab_id, {}).items() if k != "checks" and v}

    def describe(self, lab_id: str, known: dict) -> None:
        """Take what another process's report knew of a lab (an xdist worker's, ``described``)."""
        self._lab(lab_id).update(known)

    def record_check(self, lab_id: str, check: str, outcome: str, message: str) -> None:
        self._lab(lab_id)["checks"][check] = {"outcome": outcome, "message": message}

    def write(self) -> list[Path]:
        self.directory.mkdir(parents=True, exist_ok=True)
        as_json = self.directory / "conformance.json"
        as_json.write_text(json.dumps({"labs": self.labs}, indent=2) + "\n")
        as_md = self.directory / "conformance.md"
        as_md.write_text(self.markdown())
        return [as_json, as_md]

    def markdown(self) -> str:
        out = ["# Conformance report", ""]
        noted = [(lab_id, check, result) for lab_id, entry in self.labs.items()
                 for check, result in entry["checks"].items() if result["outcome"] in ("skipped", "xfailed")]
        if noted:
            out += ["Skips and expected failures (each with its reason):", "",
                    "| lab | check | outcome | reason |", "|---|---|---|---|"]
            out += [f"| {lab_id} | {check} | {result['outcome']} | {_cell(result['message'])} |"
                    for lab_id, check, result in noted]
            out.append("")
        for lab_id, entry in self.labs.items():
            outcomes = [c["outcome"] for c in entry["checks"].values()]
            summary = ", ".join(f"{outcomes.count(o)} {o}" for o in dict.fromkeys(outcomes))
            out += [f"## {lab_id}", "", entry.get("description", ""), "",
                    f"Scheme: {entry.get('scheme', '?')}, realised as {entry.get('realised', '?')}.", "",
                    *_settings(entry.get("host_settings", {})),
                    f"Checks: {summary}", "",
                    *([f"Matrix measured with {entry['pace']['said']}.", ""] if entry.get("pace") else []),
                    "| check | outcome | detail |", "|---|---|---|"]
            for check, result in entry["checks"].items():
                out.append(f"| {check} | {result['outcome']} | {_cell(result['message'])[:160]} |")
            out += ["", *_grid(entry["matrix"]), ""]
        return "\n".join(out)


def _settings(hosts: dict[str, dict[str, str]]) -> list[str]:
    """Each host's recorded settings (hostprofile.RECORDED), once per distinct set."""
    if not hosts:
        return []
    by_value: dict[str, list[str]] = {}
    for host, values in hosts.items():
        by_value.setdefault(", ".join(f"{k} = {v}" for k, v in values.items()), []).append(host)
    return [f"Host settings ({', '.join(names)}): {said}." for said, names in by_value.items()] + [""]


def _cell(message: str) -> str:
    """A message's first line, fit for a table cell."""
    return message.strip().splitlines()[0].replace("|", "/") if message.strip() else ""


def _grid(matrix: list[dict]) -> list[str]:
    if not matrix:
        return []
    sources = list(dict.fromkeys(v["source"] for v in matrix))
    targets = list(dict.fromkeys(v["target"] for v in matrix))
    cells: dict[tuple[str, str], list[str]] = {}
    for v in matrix:
        mark = ("icmp" if v["proto"] == "icmp" else str(v["port"])) + ("+" if v["reached"] else "-")
        if v["reached"] != v["promised"]:
            mark += "!"
        cells.setdefault((v["source"], v["target"]), []).append(mark)
    rows = ["Reachability (row reaches column; + reached, - blocked, ! differs from the promise):", "",
            "| from \\ to | " + " | ".join(targets) + " |", "|---" * (len(targets) + 1) + "|"]
    for source in sources:
        rows.append(f"| {source} | " + " | ".join(" ".join(cells.get((source, t), ["·"]))
                                                  for t in targets) + " |")
    return rows
