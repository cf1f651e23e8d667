"""Reachability: every probe the modes and scheme promise must get through.

The whole matrix (every node to every address, ICMP, TCP and UDP to each served
port) is measured once per lab; this suite asserts its positive half.  A
promised probe answered by someone other than its target (misdirected) or
that could not be run at all fails here too.
"""

from netconform.checks.nat import why_blocked
from netconform.deviations import excuse
from netconform.measure import table


def test_reachability(lab, matrix):
    """Where an engine is known to block exactly some promised probes (``netconform.deviations``),
    an expected failure naming it; anything else blocked, misdirected or unmeasured fails."""
    wrong = matrix.wrong(expected=True)
    notes = excuse(lab, "reachability", frozenset(v.observation for v in wrong), matrix=matrix) if wrong else ""
    assert not wrong, (f"{len(wrong)} promised probe(s) were blocked, misdirected or not measured in "
                       f"{lab.id}, each blocked one also when retried alone ({matrix.pace}):\n{table(wrong)}"
                       f"{why_blocked(lab, wrong)}" + (f"\n{notes}" if notes else ""))
