"""Isolation: the negative half of the matrix, checked just as hard.

ext is a real neighbour with routes to every container subnet, so what it
cannot reach, the engine blocked.  Where an engine is known to let through
exactly some probes (``netconform.deviations``), the test is an expected
failure naming that deviation; anything else that gets through fails.
"""

from netconform.deviations import excuse, probe_seen
from netconform.measure import table


def test_isolation(lab, matrix):
    wrong = matrix.wrong(expected=False)
    notes = excuse(lab, "isolation", frozenset(probe_seen(v.probe, v.reached) for v in wrong)) if wrong else ""
    assert not wrong, (f"{len(wrong)} probe(s) that must be blocked got through in {lab.id}:\n"
                       f"{table(wrong)}" + (f"\n{notes}" if notes else ""))
