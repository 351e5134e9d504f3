"""The one error family the CLI, the API and the web turn into a clear one-line message."""


class ShieldwallError(Exception):
    """A problem the user can act on; str(err) is the whole message."""
