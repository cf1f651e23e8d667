"""Reachability: every probe the modes and scheme promise must get through.

The whole matrix (every node to every address, ICMP and TCP to each served
port) is measured once per lab; this suite asserts its positive half.
"""

from netconform.checks.nat import why_blocked
from netconform.measure import table


def test_reachability(lab, matrix):
    wrong = matrix.wrong(expected=True)
    assert not wrong, (f"{len(wrong)} promised probe(s) were blocked in {lab.id}, each also when "
                       f"retried alone ({matrix.pace}):\n{table(wrong)}{why_blocked(lab, wrong)}")
