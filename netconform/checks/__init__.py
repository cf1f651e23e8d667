"""Conformance checks: each takes a live lab and returns what is wrong.

An empty list means the check passed.  Suites assert on these lists, and
the project's own tests break the real thing in a lab and show the same
functions report exactly that.
"""
