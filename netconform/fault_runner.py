"""``netconform faults``: run the suite clean and once per catalogued fault, say what was caught.

Each run is pytest in a child process, as a user runs it (``--inject-fault``
breaks the lab right after it is built), writing ``conformance.json`` to a
directory of its own; the runner reads each check's outcome and message
from there.  A fault is caught when its check is red with the catalogue's
words in the message.  A topology whose clean run is not green has its
faults reported as not run: a fault proves nothing on a lab already red.
The clean verdicts may come from a report the same checkout just wrote
(``--clean-from``: CI's main job and engines matrix run every topology
clean already), so that a lab is not built again only to show it is green.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .engines import SYSTEM, label
from .faults import SUITES, Catalogue, Fault

RED = ("failed", "error")


@dataclass(frozen=True)
class Outcome:
    fault: Fault
    red: tuple[str, ...]  # checks that failed
    message: str  # the fault's check's message, or why nothing could be judged
    caught: bool
    ran: bool = True
    injected: bool = True  # False: the fault's own commands failed, so nothing was judged


def run_suite(topology: str, directory: Path, extra: list[str], fault: str | None = None,
              catalogue: Path | None = None, runtime: str = "docker", engine: str = SYSTEM) -> dict[str, dict]:
    """Checks of one run: name to {outcome, message}; raises RuntimeError when pytest itself broke."""
    argv = [sys.executable, "-m", "pytest", str(SUITES), f"--topology={topology}", f"--runtime={runtime}",
            f"--engine={engine}", "-m", "not bench",
            "-p", "no:cacheprovider", "-q", f"--report-dir={directory}", *extra]
    if fault:
        argv.append(f"--inject-fault={fault}")
    if catalogue:
        argv.append(f"--fault-catalogue={catalogue}")
    done = subprocess.run(argv, cwd=SUITES.parent, capture_output=True, text=True, timeout=900)
    report = directory / "conformance.json"
    if done.returncode not in (0, 1) or not report.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"pytest exited {done.returncode}: {' / '.join(tail)}")
    labs = json.loads(report.read_text())["labs"]
    return {check: result for lab in labs.values() for check, result in lab["checks"].items()}


def clean_from(reports: list[Path]) -> dict[str, dict[str, dict]]:
    """Lab id to its checks, from the ``conformance.json`` of each report directory; raises
    ValueError naming the file when one is missing or not a conformance report."""
    found: dict[str, dict[str, dict]] = {}
    for directory in reports:
        path = directory / "conformance.json"
        try:
            labs = json.loads(path.read_text())["labs"]
            found.update({lab: data["checks"] for lab, data in labs.items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: not a conformance report of a run "
                             f"({type(err).__name__}: {err}); give a --report-dir of a finished run") from None
    return found


def run(catalogue: Catalogue, extra: list[str], progress, catalogue_path: Path | None = None,
        clean_runs: dict[str, dict[str, dict]] | None = None, jobs: int = 1) -> list[Outcome]:
    """Each fault's outcome, in the catalogue's order.  ``clean_runs`` (``clean_from``): clean
    verdicts already measured, by lab id; a group whose lab (netns provider, the runtime's default
    engine) is in them is not run clean again.  ``jobs`` runs (each its own lab, in a sandbox of
    its own) go side by side: a run mostly waits (daemons starting, silent probes), so two share
    two cores well."""
    with tempfile.TemporaryDirectory(prefix="netconform-faults-") as scratch, ThreadPoolExecutor(jobs) as pool:
        groups = list(dict.fromkeys((f.topology, f.runtime, f.engine) for f in catalogue.faults))
        broken = dict(zip(groups, pool.map(lambda group: _clean(*group, Path(scratch), extra, clean_runs or {},
                                                                progress), groups), strict=True))

        def one(fault: Fault) -> Outcome:
            why = broken[(fault.topology, fault.runtime, fault.engine)]
            outcome = (Outcome(fault, (), why, False, ran=False) if why
                       else _faulted(fault, Path(scratch), extra, catalogue_path))
            if outcome.ran:
                verdict = "caught" if outcome.caught else "MISSED" if outcome.injected else "NOT INJECTED"
                progress(f"  {fault.name} ({fault.topology} on {fault.on}): {verdict}")
            return outcome

        return list(pool.map(one, catalogue.faults))


def _clean(topology: str, runtime: str, engine: str, scratch: Path, extra: list[str],
           clean_runs: dict[str, dict[str, dict]], progress) -> str:
    """Why the faults of a topology on a runtime's build cannot be judged (its clean run is not
    green), or ""."""
    on = label(runtime, engine)
    where = f"{topology} on {on}"
    reported = clean_runs.get(f"{topology}@netns-{on}")
    try:
        clean = reported or run_suite(topology, scratch / f"{topology}-{on}-clean", extra, runtime=runtime,
                                      engine=engine)
        red = [c for c, r in clean.items() if r["outcome"] in RED]
        broken = f"the suite is not green on {where} without a fault: {', '.join(red)}" if red else ""
    except RuntimeError as err:
        broken = f"the clean run of {where} broke: {err}"
    source = " (from the given report)" if reported else ""
    progress(f"{where}: clean run{source} {'NOT green: ' + broken if broken else 'green'}")
    return broken


def _faulted(fault: Fault, scratch: Path, extra: list[str], catalogue_path: Path | None) -> Outcome:
    """The outcome of one run of the suite with ``fault`` injected."""
    try:
        checks = run_suite(fault.topology, scratch / fault.name, extra, fault.name, catalogue_path, fault.runtime,
                           fault.engine)
    except RuntimeError as err:
        return Outcome(fault, (), f"the run broke: {err}", False)
    red = tuple(c for c, r in checks.items() if r["outcome"] in RED)
    message = checks.get(fault.check, {}).get("message", "")
    failed = next((r["message"] for r in checks.values() if f"fault {fault.name}: " in r["message"]), None)
    if failed is not None:
        return Outcome(fault, (), failed, False, injected=False)
    return Outcome(fault, red, message, fault.check in red and fault.message in message)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| fault | topology | runtime | must turn red | turned red | message | verdict |",
            "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        verdict = ("caught" if o.caught else "not run" if not o.ran
                   else "**not injected**" if not o.injected else "**missed**")
        first = _cell(o.message)
        rows.append(f"| {o.fault.name} | {o.fault.topology} | {o.fault.on} | {o.fault.check} | "
                    f"{', '.join(o.red) or '-'} | {first} | {verdict} |")
    caught = sum(o.caught for o in outcomes)
    return "\n".join(rows) + f"\n\nfaults: {caught} of {len(outcomes)} caught"


def _cell(message: str) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return text.removeprefix("AssertionError: ").replace("|", "/")[:140]
