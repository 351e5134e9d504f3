"""TAXII 2.1: the node's server (and, later, the client federation uses)."""

from shieldwall.taxii.app import Settings, access_for, create_app

__all__ = ["Settings", "access_for", "create_app"]
