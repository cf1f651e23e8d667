"""Conformance checks: each takes a live lab and returns what is wrong.

An empty list means the check passed.  Suites assert on these lists, and
the project's own tests break the real thing in a lab and show the same
functions report exactly that.
"""


def assert_none(problems: list[str]) -> None:
    """Fail the calling test with every problem, one per line."""
    __tracebackhide__ = True
    assert not problems, "\n".join(problems)
