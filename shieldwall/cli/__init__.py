"""The `shieldwall` command: thin, parses and renders; the rooms do the work."""
