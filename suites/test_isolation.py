"""Isolation: the negative half of the matrix, checked just as hard.

ext is a real neighbour with routes to every container subnet, so what it
cannot reach, the engine blocked.  Every "blocked" rests on two independent
attempts, each waiting past the kernel's first SYN retransmission, so a
leak that answers late or only a flow's second packet is reported; a port
that completes a handshake is open, whether or not anything is said on it.
Where an engine is known to let through exactly some probes
(``netconform.deviations``), the test is an expected failure naming that
deviation; anything else that gets through fails.
"""

from netconform.deviations import excuse
from netconform.measure import table


def test_isolation(lab, matrix):
    wrong = matrix.wrong(expected=False)
    notes = excuse(lab, "isolation", frozenset(v.observation for v in wrong)) if wrong else ""
    assert not wrong, (f"{len(wrong)} probe(s) that must be blocked got through (or could not be "
                       f"measured) in {lab.id} ({matrix.pace}):\n{table(wrong)}" + (f"\n{notes}" if notes else ""))
