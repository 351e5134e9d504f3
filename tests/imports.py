"""What a fresh interpreter has imported after some code: the start-up tests' one probe."""

from __future__ import annotations

import subprocess
import sys


def packages_loaded(code: str, among: set[str]) -> set[str]:
    """The top-level packages of `among` that a new Python process has imported after
    running `code` (each test in its own process: this one has imported everything)."""
    probe = (f"{code}\nimport sys\n"
             "print(' '.join({m.split('.')[0] for m in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    return set(done.stdout.split()) & among
