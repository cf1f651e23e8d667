"""Runtimes: how a container is made on a host."""
