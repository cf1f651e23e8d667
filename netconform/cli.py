"""``netconform``: the commands beside the pytest plugin (``netconform COMMAND --help`` for each)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .topology import TopologyError, available, load
from .topology.load import BUILTIN_DIR


def _topologies(args) -> int:
    for name in available():
        print(f"{name:<14} {load(BUILTIN_DIR / f'{name}.yaml').description}")
    return 0


def _check(args) -> int:
    failed = 0
    for path in args.files:
        try:
            load(path)
            print(f"{path}: ok")
        except TopologyError as err:
            print(err, file=sys.stderr)
            failed = 1
    return failed


def _generate(args) -> int:
    from .topology.generate import generate

    try:
        text, topo = generate(args.hosts, args.containers, args.scheme)
    except ValueError as err:
        print(f"generate: {err}", file=sys.stderr)
        return 2
    except TopologyError as err:
        print(err, file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(text)
        print(f"{args.out}: {topo.name}, {len(topo.hosts)} hosts, {len(topo.containers)} containers "
              f"(pytest --topology={args.out})")
    else:
        sys.stdout.write(text)
    return 0


def _schema(args) -> int:
    from .topology.schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def _report(args) -> int:
    from .reporting.allure import generate

    index = generate([Path(d) for d in args.dirs or ["reports"]], Path(args.out))
    print(f"report: {index}")
    return 0


def _box(args) -> int:
    from .vm import box

    built = box.build(force=args.force)
    print(f"box: {built.path} (vagrant box {box.NAME}, digest {built.digest})")
    return 0


def _positive(text: str) -> int:
    """An argparse type: a whole number of 1 or more (argparse names the option)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: 1 or more")
    return int(text)


def _faults(args) -> int:
    from . import fault_runner, faults

    path = Path(args.catalogue) if args.catalogue else faults.CATALOGUE
    try:
        catalogue = faults.load(path)
    except TopologyError as err:
        print(err, file=sys.stderr)
        return 2
    chosen = [f for f in catalogue.faults
              if (not args.topology or f.topology in args.topology.split(","))
              and (not args.only or f.name in args.only.split(","))]
    unknown = sorted(set((args.only or "").split(",")) - {f.name for f in catalogue.faults} - {""})
    if unknown:
        print(f"--only: {', '.join(unknown)} not in {path}", file=sys.stderr)
        return 2
    if args.list:
        for f in chosen:
            print(f"{f.name:<38} {f.topology:<14} {f.runtime:<7} {f.check}: {f.cause}")
        return 0
    try:
        clean = fault_runner.clean_from([Path(d) for d in args.clean_from or []])
    except ValueError as err:
        print(f"--clean-from: {err}", file=sys.stderr)
        return 2
    outcomes = fault_runner.run(faults.Catalogue(tuple(chosen)), args.pytest_args, print,
                                path if args.catalogue else None, clean, args.jobs)
    print(fault_runner.table(outcomes))
    return 0 if all(o.caught for o in outcomes) else 1


def _engines(args) -> int:
    from . import engines

    if args.action == "fetch":
        for name in args.names or list(engines.BUILDS):
            if name not in engines.RELEASES:
                print(f"engines fetch: {name!r} is not a release; allowed: {', '.join(engines.RELEASES)}",
                      file=sys.stderr)
                return 2
            try:
                engines.fetch(name)
            except (RuntimeError, OSError) as err:
                print(f"engines fetch {name}: {err}", file=sys.stderr)
                return 1
    for name in engines.CHOICES:
        engine = engines.resolve(name)
        print(f"{name:<20} {engine.missing() or engine.describe()}")
    return 0


def run_suites(pytest_args: list[str]) -> int:
    """The shipped suites under pytest, from any directory, installed or in a checkout."""
    import pytest

    from .shipped import FIXTURE_PLUGINS, shipped

    suites = shipped("suites")
    plugins = [word for name in FIXTURE_PLUGINS for word in ("-p", name)]
    return int(pytest.main([f"--rootdir={suites.parent}", *plugins, *pytest_args, str(suites)]))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="netconform", description="Container networking conformance: "
                                  "the commands beside the pytest plugin (pytest --topology=...).")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("topologies", help="list shipped topologies and their descriptions").set_defaults(run=_topologies)
    check = sub.add_parser("check", help="validate topology files, report every problem")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(run=_check)
    sub.add_parser("schema", help="print the JSON Schema of topology files").set_defaults(run=_schema)
    gen = sub.add_parser("generate", help="write a topology of N hosts and M containers on a scheme",
                         description="Deals M containers round-robin over N hosts (mode bridge, serving "
                         "port 80) with an address plan the scheme accepts, validated like any topology "
                         "file; e.g. netconform generate --hosts 4 --containers 100 --scheme vxlan -o big.yaml")
    gen.add_argument("--hosts", type=int, required=True, metavar="N")
    gen.add_argument("--containers", type=int, required=True, metavar="M")
    gen.add_argument("--scheme", default="local", metavar="SCHEME",
                     help="a cross-host scheme (default: local; see docs/schemes.md)")
    gen.add_argument("-o", "--out", metavar="FILE", help="write here (default: standard output)")
    gen.set_defaults(run=_generate)
    report = sub.add_parser("report", help="merge runs' report dirs into the Allure HTML report with history, "
                                           "comparison files: across schemes, and across providers or engines where the runs hold both")
    report.add_argument("dirs", nargs="*", metavar="DIR", help="report directories (default: reports)")
    report.add_argument("--out", default="reports", help="where to write (default: reports)")
    report.set_defaults(run=_report)
    box = sub.add_parser("box", help="build the vagrant-libvirt box from Debian packages (cached)")
    box.add_argument("--force", action="store_true", help="rebuild even if cached")
    box.set_defaults(run=_box)
    faults = sub.add_parser("faults", help="inject each catalogued fault into its lab and show which checks "
                                           "caught it", description="Builds each topology's lab, confirms "
                            "the suite is green, then once per fault breaks the lab and runs the whole suite; "
                            "prints a table and 'faults: N of M caught' (exit 1 if any was missed). "
                            "Arguments after -- go to pytest (e.g. -- --provider ssh --inventory hosts.yaml).")
    faults.add_argument("--topology", metavar="NAME[,NAME...]", help="only faults of these topologies")
    faults.add_argument("--only", metavar="FAULT[,FAULT...]", help="only these faults")
    faults.add_argument("--list", action="store_true", help="list the faults and exit")
    faults.add_argument("--catalogue", metavar="FILE", help="a catalogue of your own (format: netconform/faults.yaml)")
    faults.add_argument("--clean-from", action="append", metavar="REPORT_DIR",
                        help="take each topology's clean verdicts from the conformance.json in REPORT_DIR "
                             "(a --report-dir of a run of this checkout on the netns provider and each "
                             "runtime's default engine, as CI's main job writes) instead of building "
                             "the lab clean again; repeatable")
    faults.add_argument("--jobs", type=_positive, default=1, metavar="N",
                        help="runs side by side, each with a lab of its own (default 1; CI uses 2 on 2 cores)")
    faults.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS")
    faults.set_defaults(run=_faults)
    run = sub.add_parser("run", help="run the shipped suites with pytest, from any directory: "
                                     "netconform run --topology=bridge [PYTEST_ARGS]",
                         description="Runs pytest on the suites netconform ships (in the installed package "
                         "or the checkout), with their fixtures; every argument after `run` goes to pytest "
                         "(see `pytest --help`, group netconform, for --topology, --engine, --provider, ...).")
    run.add_argument("pytest_args", nargs="*", metavar="PYTEST_ARGS")
    run.set_defaults(run=lambda args: run_suites(args.pytest_args))
    engines = sub.add_parser("engines", help="fetch Docker engines of Debian releases for --engine, and list them",
                             description="`fetch` downloads each release's docker.io, containerd, runc and tini "
                             "with apt as a download only (a private sources list, never the machine's apt "
                             "configuration) and unpacks them into ~/.cache/netconform/engines; `list` shows "
                             "what --engine can use.")
    engines.add_argument("action", choices=("list", "fetch"))
    engines.add_argument("names", nargs="*", metavar="NAME", help="releases to fetch (default: all)")
    engines.set_defaults(run=_engines)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"] and argv[1:2] not in (["-h"], ["--help"]):
        return run_suites(argv[1:])  # pytest's options are pytest's to parse
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
