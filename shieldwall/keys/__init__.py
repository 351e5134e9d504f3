"""The node's keys, kept in its home (`<home>/keys/`)."""

from shieldwall.keys.home import node_key

__all__ = ["node_key"]
