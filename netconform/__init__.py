"""netconform: conformance and benchmark suite for container networking."""

__version__ = "0.1.0"
