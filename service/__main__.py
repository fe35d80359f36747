"""`python -m service serve|worker|service ...`: the service commands without the `singsong` entry point.

The same handlers as `singsong serve` etc. (service/cli.py); useful in containers and before the command
module is listed in pipelines/cli.py.
"""

from __future__ import annotations

import sys

from pipelines import cli
from service import cli as service_cli


def main() -> int:
    original = list(cli.COMMAND_MODULES)
    if service_cli.__name__ not in original:
        cli.COMMAND_MODULES.append(service_cli.__name__)
    try:
        return cli.main()
    finally:
        cli.COMMAND_MODULES[:] = original


if __name__ == "__main__":
    sys.exit(main())
