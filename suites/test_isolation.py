"""Isolation: the negative half of the matrix, checked just as hard."""

from netconform.measure import table


def test_isolation(lab, matrix):
    wrong = matrix.wrong(expected=False)
    assert not wrong, f"{len(wrong)} probe(s) that must be blocked got through in {lab.id}:\n{table(wrong)}"
