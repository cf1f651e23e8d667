"""Reachability: every probe the modes and scheme promise must get through.

The whole matrix (every node to every address, ICMP and TCP to each served
port) is measured once per lab; this suite asserts its positive half.
"""

from netconform.checks.nat import why_blocked
from netconform.deviations import excuse, probe_seen
from netconform.measure import table


def test_reachability(lab, matrix):
    """Where an engine is known to block exactly some promised probes (``netconform.deviations``),
    an expected failure naming it; anything else blocked fails."""
    wrong = matrix.wrong(expected=True)
    notes = (excuse(lab, "reachability", frozenset(probe_seen(v.probe, v.reached) for v in wrong),
                    matrix=matrix) if wrong else "")
    assert not wrong, (f"{len(wrong)} promised probe(s) were blocked in {lab.id}, each also when "
                       f"retried alone ({matrix.pace}):\n{table(wrong)}{why_blocked(lab, wrong)}"
                       + (f"\n{notes}" if notes else ""))
