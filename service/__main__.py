"""`python -m service serve|worker|service ...`: the `singsong` command without its console-script shim.

Useful in containers, where the entry point may not be on PATH.
"""

from __future__ import annotations

import sys

from core.cli import main

if __name__ == "__main__":
    sys.exit(main())
