"""Shieldwall: a node of an alliance's collective cyber defence."""

__version__ = "0.1.0"
