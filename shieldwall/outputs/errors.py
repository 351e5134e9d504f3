"""Errors of the alert outputs."""

from shieldwall.errors import ShieldwallError


class OutputError(ShieldwallError):
    """An output cannot start (a secret file missing, a bad certificate); one line."""


class DeliveryError(Exception):
    """One delivery failed (refused, timed out, answered an error); the alert is retried."""
