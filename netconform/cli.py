"""``netconform``: small helpers beside the pytest plugin.

    netconform topologies        list shipped topologies and their descriptions
    netconform check FILE...     validate topology files, report every problem
    netconform schema            print the JSON Schema of topology files
    netconform report [--out OUT] DIR [DIR ...]
                                 merge runs' report dirs (allure-results/, compare.json) into
                                 OUT (default: reports) with the Allure HTML report and history
    netconform box [--force]     build the vagrant-libvirt box from Debian packages (cached
                                 until its package list changes) and print its path
"""

from __future__ import annotations

import sys

from .topology import TopologyError, available, load
from .topology.load import BUILTIN_DIR
from .topology.schema import schema_text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "help"
    if command == "schema":
        sys.stdout.write(schema_text())
    elif command == "topologies":
        for name in available():
            print(f"{name:<14} {load(BUILTIN_DIR / f'{name}.yaml').description}")
    elif command == "report":
        from pathlib import Path

        from .perf.allure_report import generate

        rest = args[1:]
        out = Path("reports")
        if rest[:1] == ["--out"] and len(rest) > 1:
            out, rest = Path(rest[1]), rest[2:]
        index = generate([Path(d) for d in rest or ["reports"]], out)
        print(f"report: {index}")
    elif command == "box" and args[1:] in ([], ["--force"]):
        from .vm import box

        built = box.build(force=args[1:] == ["--force"])
        print(f"box: {built.path} (vagrant box {box.NAME}, digest {built.digest})")
    elif command == "check" and len(args) > 1:
        failed = 0
        for path in args[1:]:
            try:
                load(path)
                print(f"{path}: ok")
            except TopologyError as err:
                print(err, file=sys.stderr)
                failed = 1
        return failed
    else:
        print(__doc__.strip(), file=sys.stderr if command != "help" else sys.stdout)
        return 0 if command == "help" else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
