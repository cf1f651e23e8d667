"""The pytest plugin: options, lab parametrisation and the ``lab`` fixture.

Registered through the ``pytest11`` entry point, so ``pytest --topology=X``
works from anywhere once netconform is installed.  Topologies are loaded
and validated at configure time: a bad file or option is a usage error
(exit 4) that names the file, the key and what is allowed, before anything
is built.  Every test that takes ``lab`` is parametrised over the chosen
topologies (``indirect=True``): one lab per topology, built once, shared by
its tests, torn down before the next one is built.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import allure
import pytest

from . import inventory as inventories
from . import engines, faults, registry, skips
from .inventory import Inventory
from .lab import Lab
from .nodes import SshNode
from .plan import plan
from .reporting.conformance import Report
from .runtimes.base import Unavailable
from .schemes import SCHEMES
from .topology import Topology, TopologyError, available, load, resolve
from .topology.load import BUILTIN_DIR

DEFAULT_TOPOLOGY = "all"
_SPECS = pytest.StashKey[list["LabSpec"]]()
_KEPT = pytest.StashKey[list[Lab]]()
_ALLOWED = pytest.StashKey[set[str]]()
_FAULT = pytest.StashKey["faults.Fault | None"]()
_STARTED = pytest.StashKey[float]()
REPORT = pytest.StashKey["Report | None"]()


@dataclass(frozen=True)
class LabSpec:
    """What one lab parameter stands for."""

    topology: Topology
    provider: str
    runtime: str
    inventory: Inventory | None = None  # the ssh provider's machines

    vagrant_box: str | None = None  # a public box instead of the one netconform builds
    engine: str = engines.SYSTEM  # the docker runtime's engine build (--engine)

    def lab(self, progress: Callable[[str], None] = lambda text: None) -> Lab:
        options = {"ssh": {"inventory": self.inventory}, "vagrant": {"box": self.vagrant_box}}
        return Lab(self.topology, self.provider, self.runtime,
                   provider_options=options.get(self.provider, {}),
                   runtime_options={"build": engines.resolve(self.engine)}, progress=progress)

    @property
    def id(self) -> str:
        return f"{self.topology.name}@{self.provider}-{engines.label(self.runtime, self.engine)}"

    def __repr__(self) -> str:  # how reports (Allure) show the parameter
        return self.id


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netconform", "netconform: container networking labs")
    group.addoption("--topology", default=DEFAULT_TOPOLOGY, metavar="NAME[,NAME...]|all|PATH",
                    help="topologies to build and check: names from topologies/, paths to .yaml "
                         f"files, or 'all' (default: {DEFAULT_TOPOLOGY})")
    group.addoption("--provider", default="netns", choices=sorted(registry.PROVIDERS),
                    help="where hosts come from: netns (namespaces on this machine, the default), "
                         "vagrant (VMs, see `netconform box`) or ssh (your machines, with --inventory)")
    group.addoption("--inventory", default=None, metavar="FILE",
                    help="the ssh provider's machines: addresses, login, underlay NIC (see docs/providers.md)")
    group.addoption("--vagrant-box", default=None, metavar="NAME",
                    help="the vagrant provider's box: a Debian 12 box in vagrant's store, provisioned on "
                         "first boot (default: the box `netconform box` builds locally)")
    group.addoption("--dry-run", action="store_true",
                    help="print what building each lab would do on its hosts, and exit without touching them")
    group.addoption("--runtime", default="docker", metavar="NAME[,NAME...]",
                    help="the container engine(s) on each host: docker (a dockerd per host, the default) "
                         "and/or podman (rootful Podman with netavark and aardvark-dns, its own state per "
                         "host); several run every topology on each, in one run, ids reading "
                         "topology@netns-podman; --engine picks docker's builds; what a runtime has no "
                         "equivalent for is skipped with its declared reason (docs/runtimes.md)")
    group.addoption("--engine", default=engines.SYSTEM, metavar="NAME[,NAME...]|all",
                    help="the engine build(s) each lab runs: system (the dockerd or podman on PATH, the "
                         f"default) or {', '.join(engines.RELEASES)} (Debian's packages, see `netconform "
                         "engines fetch`), each for its own runtime; 'all' runs every topology on each "
                         "release of the chosen runtimes; ids read topology@netns-docker-28.5")
    group.addoption("--keep-lab", action="store_true",
                    help="leave each lab up after the run and print how to enter and remove it")
    group.addoption("--list-topologies", action="store_true",
                    help="list the shipped topologies with their descriptions and exit")
    group.addoption("--bench-samples", type=int, default=6, metavar="N",
                    help="iperf3 samples per path and metric at least, each one iperf3 test (default: 6, "
                         "the fewest with a 95%% interval of the median)")
    group.addoption("--bench-max-samples", type=int, default=24, metavar="N",
                    help="samples at most, where --bench-precision is not met before (default: %(default)s)")
    group.addoption("--bench-reserve", type=float, default=30.0, metavar="S",
                    help="seconds the whole run may spend past the cap (and half as many again) on TCP "
                         "figures that would meet --bench-precision at what their pairs cost so far, "
                         "first come first served (default: %(default)g; 0: none)")
    group.addoption("--bench-seconds", type=float, default=0.2, metavar="S",
                    help="seconds of traffic per sample, sized in bytes from a warm-up test (default: 0.2)")
    group.addoption("--bench-precision", type=float, default=0.05, metavar="F",
                    help="stop sampling once the 95%% interval of the median (of the ratio to the veth "
                         "pair, where paired) is within F of it (default: 0.05)")
    group.addoption("--bench-streams", type=int, default=1, metavar="N",
                    help="also measure TCP with N parallel streams (tcp-parallel), client and server on "
                         "separate cores (default: 1, one stream only: iperf3 before 3.16 sends every "
                         "stream from one thread, so on a pinned core N streams measure what one does)")
    group.addoption("--bench-every-path", action="store_true",
                    help="measure every lab's paths, even where another lab of the run already "
                         "measured the same datapath (default: measure each datapath once and "
                         "refer to it)")
    group.addoption("--strict-skips", action="store_true",
                    help="fail every skip but the user's own selection and the allowed environment "
                         "limits (see --allow-skip); the summary lists every skip and xfail")
    group.addoption("--allow-skip", action="append", default=[], metavar="LIMIT[,LIMIT...]",
                    help="with --strict-skips, also allow skips for these kernel limits: "
                         f"{', '.join(skips.LIMITS)} (always allowed: {', '.join(skips.DEFAULT_ALLOWED)})")
    group.addoption("--inject-fault", default=None, metavar="NAME",
                    help="break each lab of the fault's topology right after it is built, as the fault "
                         "catalogue says (see `netconform faults --list`)")
    group.addoption("--fault-catalogue", default=None, metavar="FILE",
                    help="the fault catalogue --inject-fault reads (default: the shipped one)")
    group.addoption("--report-dir", default=None, metavar="DIR",
                    help="write conformance.{json,md} (checks and matrices per lab) and, with the bench "
                         "suite, compare.{json,md} and charts to DIR")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(feature): run only on labs whose topology has "
                                       "this feature: a mode name, 'publish', 'link', 'networks', 'two-networks', "
                                       "'multihost' or 'scheme:NAME'")
    config.addinivalue_line("markers", "mutates: the test changes its lab; it runs after the tests "
                                       "that only observe the same lab")
    config.addinivalue_line("markers", "bench: a benchmark (iperf3, latency); select with -m bench, "
                                       "leave out with -m 'not bench'")
    config.stash[_KEPT] = []
    config.stash[_STARTED] = time.monotonic()
    for option, low, allowed in (("bench_samples", 1, "1 or more"), ("bench_max_samples", 1, "1 or more"),
                                 ("bench_seconds", 0.05, "0.05 or more"), ("bench_reserve", 0, "0 or more"),
                                 ("bench_streams", 1, "1 or more"),
                                 ("bench_precision", 0.001, "0.001 or more")):
        if getattr(config.option, option) < low:
            raise pytest.UsageError(f"--{option.replace('_', '-')}: "
                                    f"{getattr(config.option, option)} is not allowed; allowed: {allowed}")
    config.stash[_ALLOWED] = _allowed_limits(config)
    report_dir = config.option.report_dir
    config.stash[REPORT] = Report(Path(report_dir)) if report_dir else None
    # Under xdist the controller sees every check's outcome and writes the report.
    if report_dir and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ReportHooks(config.stash[REPORT]), "netconform-report")
    if config.option.list_topologies:
        return
    specs = []
    try:
        inventory = _inventory(config)
        chosen = _runtimes_and_engines(config)
        for path in resolve(config.option.topology):
            topo = load(path)
            for runtime, engine in chosen:
                specs.append(LabSpec(topo, config.option.provider, runtime, inventory,
                                     config.option.vagrant_box, engine))
            if inventory is not None:
                specs[-1].lab().provider.check(topo)
    except TopologyError as err:
        raise pytest.UsageError(str(err)) from None
    config.stash[_SPECS] = specs
    config.stash[_FAULT] = _fault(config)
    if config.option.dry_run:
        for spec in specs:
            print(f"# {spec.id}")
            print("\n".join(plan(spec.lab())), end="\n\n")
        pytest.exit("dry run: nothing was built", returncode=0)


def _runtimes_and_engines(config: pytest.Config) -> list[tuple[str, str]]:
    """(runtime, engine build) of each lab per topology: every --runtime, and for a runtime that
    runs engine builds (docker) every --engine; a fetched build runs only where its files are
    (this machine)."""
    runtimes = [part.strip() for part in config.option.runtime.split(",") if part.strip()]
    unknown = [r for r in runtimes if r not in registry.RUNTIMES]
    if unknown or not runtimes:
        raise pytest.UsageError(f"--runtime: {', '.join(unknown) or repr(config.option.runtime)} is not a "
                                f"runtime; allowed: {', '.join(registry.RUNTIMES)}")
    try:
        chosen = engines.parse(config.option.engine)
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None
    builds = [r for r in runtimes if registry.implementation("runtime", r).engine_builds]
    stray = [e for e in chosen if e != engines.SYSTEM and engines.RELEASES[e].runtime not in builds]
    if stray and config.option.engine != "all":
        allowed = [engines.SYSTEM, *(e for e in engines.RELEASES if engines.RELEASES[e].runtime in builds)]
        raise pytest.UsageError(f"--engine: {', '.join(stray)} is no build of --runtime {config.option.runtime}; "
                                f"allowed: {', '.join(allowed)}")
    if chosen != [engines.SYSTEM] and not registry.load("provider", config.option.provider).local_kernel:
        raise pytest.UsageError(f"--engine: {config.option.engine} runs a build from this machine's cache, "
                                f"which the {config.option.provider} provider's hosts do not have; allowed "
                                "there: system (their own dockerd)")
    return [(r, engine) for r in runtimes
            for engine in ((_with_system(r, chosen) if config.option.engine == "all" else chosen)
                           if r in builds else [engines.SYSTEM])
            if engine == engines.SYSTEM or engines.RELEASES[engine].runtime == r]


def _with_system(runtime: str, chosen: list[str]) -> list[str]:
    """``--engine all`` for ``runtime``: every release, and the system's build where it is none of
    them (Podman 4.3 from Debian 12; Docker's system build here is Debian 12's 20.10, a release)."""
    system = registry.implementation("runtime", runtime)(build=engines.EngineBuild(engines.SYSTEM)).version()
    ours = [e for e in chosen if engines.RELEASES[e].runtime == runtime]
    same = any(system.startswith(engines.RELEASES[e].version + ".") for e in ours)
    return ours if same or system == "unknown" else [engines.SYSTEM, *ours]


def _fault(config: pytest.Config):
    """The fault --inject-fault names, from the catalogue; a usage error if there is none."""
    name = config.option.inject_fault
    if name is None:
        return None
    try:
        catalogue = faults.load(Path(config.option.fault_catalogue or faults.CATALOGUE))
    except TopologyError as err:
        raise pytest.UsageError(str(err)) from None
    names = [f.name for f in catalogue.faults]
    if name not in names:
        raise pytest.UsageError(f"--inject-fault: {name!r} is not in the catalogue; allowed: {', '.join(names)}")
    return catalogue.get(name)


def _allowed_limits(config: pytest.Config) -> set[str]:
    given = {part.strip() for value in config.option.allow_skip for part in value.split(",") if part.strip()}
    unknown = sorted(given - skips.LIMITS.keys())
    if unknown:
        raise pytest.UsageError(f"--allow-skip: {', '.join(unknown)} is not a known limit; allowed: "
                                f"{', '.join(skips.LIMITS)}")
    return given | set(skips.DEFAULT_ALLOWED)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under --strict-skips a skip that is neither the user's selection nor an allowed
    environment limit becomes a failure saying so.  On an xdist worker, what the report knows of
    the test's lab (topology, engine, realisation, matrix) rides on the test's report to the
    controller, which writes the report (``ReportHooks``)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    own = item.config.stash.get(REPORT, None)
    known = own.described(_lab_id(report)) if own is not None and hasattr(item.config, "workerinput") else {}
    if known:
        report.user_properties.append((LAB_PROPERTY, known))
    if not (report.skipped and item.config.option.strict_skips) or hasattr(report, "wasxfail"):
        return
    reason = _message(report)
    if not skips.allowed(reason, item.config.stash[_ALLOWED]):
        report.outcome = "failed"
        report.longrepr = (f"--strict-skips: skipped without an allowed reason: {reason}\n"
                           "Install what it names (setup.sh), or, for a kernel feature this machine "
                           f"lacks, allow it with --allow-skip (limits: {', '.join(skips.LIMITS)}).")


def _inventory(config: pytest.Config) -> Inventory | None:
    given, provider = config.option.inventory, config.option.provider
    if provider == "ssh" and not given:
        raise TopologyError("--inventory", (("(option)", "is required with --provider ssh; allowed: "
                                                          "a path to an inventory file"),))
    if given and provider != "ssh":
        raise TopologyError("--inventory", (("(option)", f"is for --provider ssh, not {provider}"),))
    return inventories.load(given) if given else None


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.option.list_topologies:
        return None
    names = available()
    width = max(map(len, names), default=0)
    for name in names:
        topo = load(BUILTIN_DIR / f"{name}.yaml")
        print(f"{name.ljust(width)}  {topo.description}")
    return 0


def features(topo: Topology) -> set[str]:
    """What a topology exercises, for ``@pytest.mark.requires``."""
    found = {c.mode for c in topo.containers}
    if any(c.publish for c in topo.containers):
        found.add("publish")
    if any(c.links for c in topo.containers):
        found.add("link")
    if any(not h.icc for h in topo.hosts):
        found.add("no-icc")
    if topo.networks:
        found.add("networks")
    if len({n.name for n in topo.networks}) >= 2:
        found.add("two-networks")
    found |= {f"isolate:{n.isolate}" for n in topo.networks if n.isolate != "default"}
    if any(n.dns for n in topo.networks):
        found.add("network-dns")
    if len(topo.hosts) > 1:
        found.add("multihost")
    found.add(f"scheme:{topo.scheme}")
    family = SCHEMES[topo.scheme].family if topo.scheme in SCHEMES else None
    if family:
        found.add(f"scheme:{family}")
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lab" not in metafunc.fixturenames:
        return
    needed = {m.args[0] for m in metafunc.definition.iter_markers("requires")}
    specs = [s for s in metafunc.config.stash[_SPECS] if needed <= features(s.topology)]
    # One xdist group per lab: with --dist loadgroup each lab is built on one worker only.
    params = [pytest.param(s, id=s.id, marks=pytest.mark.xdist_group(s.id)) for s in specs]
    if not params:
        reason = skips.selection(f"no chosen topology has {' and '.join(sorted(needed))}")
        params = [pytest.param(None, id="no-lab", marks=pytest.mark.skip(reason=reason))]
    metafunc.parametrize("lab", params, indirect=True, scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within each lab's run of tests, those that change the lab go last.

    Runs after pytest has grouped items by their session-scoped lab, and
    keeps that grouping: a lab is still built once.
    """
    def lab_of(item: pytest.Item) -> str:
        spec = getattr(getattr(item, "callspec", None), "params", {}).get("lab")
        return spec.id if isinstance(spec, LabSpec) else ""

    order = {key: i for i, key in enumerate(dict.fromkeys(map(lab_of, items)))}
    items.sort(key=lambda item: (order[lab_of(item)], item.get_closest_marker("mutates") is not None))


@pytest.fixture(autouse=True)
def _allure_labels(request: pytest.FixtureRequest) -> None:
    """Label lab tests so Allure groups them: epic (conformance or benchmarks), feature
    (scheme), story (topology), with provider and runtime as parameters."""
    spec = getattr(getattr(request.node, "callspec", None), "params", {}).get("lab")
    if not isinstance(spec, LabSpec):
        return
    allure.dynamic.epic("benchmarks" if request.node.get_closest_marker("bench") else "conformance")
    allure.dynamic.feature(f"scheme {spec.topology.scheme}")
    allure.dynamic.story(spec.topology.name)
    for name, value in (("topology", spec.topology.name), ("scheme", spec.topology.scheme),
                        ("provider", spec.provider), ("runtime", spec.runtime), ("engine", spec.engine)):
        allure.dynamic.parameter(name, value)
    # Allure 3 environments (netconform report): docker, docker-28.5, podman
    allure.dynamic.label("engine", engines.label(spec.runtime, spec.engine))


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest):
    """A live lab for the topology this test is parametrised with."""
    spec: LabSpec = request.param
    built = spec.lab(progress=lambda text: say(request.config, text))
    lacking = sorted(set(built.runtime.lacks) & features(spec.topology))
    if lacking:  # declared by the runtime: --strict-skips accepts exactly this
        reason = skips.unsupported(spec.runtime, lacking[0], built.runtime.lacks[lacking[0]])
        if request.config.stash[REPORT] is not None:
            request.config.stash[REPORT].record_unbuilt(built, reason)
        pytest.skip(reason)
    reason = built.missing()
    if reason:
        pytest.skip(reason)
    try:
        with built:
            fault = request.config.stash[_FAULT]
            if fault is not None and (fault.topology, fault.runtime) == (spec.topology.name, spec.runtime):
                faults.inject(built, fault)
            report = request.config.stash[REPORT]
            if report is not None:
                report.record_lab(built)
            yield built
            if request.config.option.keep_lab:
                built.keep()
                request.config.stash[_KEPT].append(built)
    except Unavailable as err:  # probed on the hosts, before any engine; the lab is torn down
        pytest.skip(str(err))


def say(config: pytest.Config, text: str) -> None:
    """A progress line (a lab's phase, a measured path) through pytest's terminal reporter,
    with the session's elapsed time; none with -q, and none from xdist workers, whose output
    no one sees (their controller reports each test as it ends)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.option.verbose < 0 or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    capture = config.pluginmanager.get_plugin("capturemanager")  # a fixture's output is captured
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        if getattr(reporter._tw, "width_of_current_line", 0):  # after a test's dot, not on its line
            reporter.write("\n")
        reporter.write_line(f"[{time.monotonic() - config.stash[_STARTED]:7.1f} s] {text}")


LAB_PROPERTY = "netconform-lab"  # a test report's property carrying its lab's entry from a worker


def _lab_id(report: pytest.TestReport) -> str:
    return report.nodeid.partition("[")[2].rstrip("]")


class ReportHooks:
    """Feeds test outcomes into the report and writes it when the session ends."""

    def __init__(self, report: Report):
        self.report = report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        lab_id = _lab_id(report)
        for name, value in report.user_properties:  # from an xdist worker: what it knows of the lab
            if name == LAB_PROPERTY and lab_id:
                self.report.describe(lab_id, value)
        if not lab_id or (report.when != "call" and report.passed):
            return
        check = report.nodeid.split("::")[-1].partition("[")[0]
        self.report.record_check(lab_id, check, _outcome(report), _message(report))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.report.labs:
            for path in self.report.write():
                terminalreporter.write_line(f"report: {path}")


def _outcome(report: pytest.TestReport) -> str:
    return "xfailed" if hasattr(report, "wasxfail") else report.outcome


def _message(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return report.wasxfail
    if report.skipped and isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        return crash.message if crash else str(report.longrepr)
    return ""


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    _skips_and_xfails(terminalreporter, config)
    for kept in config.stash.get(_KEPT, []):
        terminalreporter.write_sep("-", f"lab {kept.id} kept (run {kept.run_id})")
        for line in keep_instructions(kept):
            terminalreporter.write_line(line)


def _skips_and_xfails(terminalreporter, config: pytest.Config) -> None:
    """Every skip and expected failure with its reason, before pytest's own short summary."""
    rows = []
    for kind in ("skipped", "xfailed"):
        for report in terminalreporter.stats.get(kind, []):
            if kind == "skipped" and hasattr(report, "wasxfail"):
                continue
            rows.append(f"{kind.upper()} {report.nodeid}: {_message(report).strip().splitlines()[0]}")
    if not rows and not config.option.strict_skips:
        return
    allowed = ", ".join(sorted(config.stash.get(_ALLOWED, set())))
    terminalreporter.write_sep("=", f"netconform: {len(rows)} skip(s) and expected failure(s)")
    if config.option.strict_skips:
        terminalreporter.write_line(f"--strict-skips: allowed environment limits: {allowed}")
    for row in rows:
        terminalreporter.write_line(row)


def keep_instructions(kept: Lab) -> list[str]:
    pid = kept.sandbox.pid
    enter = f"nsenter --mount=/proc/{pid}/ns/mnt --pid=/proc/{pid}/ns/pid"
    lines = []
    for name, node in kept.hosts.items():
        if isinstance(node, SshNode):  # a machine: ssh to it from the namespace that reaches it
            lines.append(f"  enter {name:<8} {enter} --net={kept.sandbox.netns(node.via)} -- "
                         f"ssh -F {node.config} {name}")
        else:
            lines.append(f"  enter {name:<8} {enter} --net={kept.sandbox.netns(node.netns or name)} -- sh")
    for name, node in kept.containers.items():
        lines.append(f"  enter {name:<8} {kept.runtime.enter_command(node)}")
    lines.append(f"  remove        kill {pid}")
    return lines
