"""Error types shared by every pipeline stage.

Each error carries a message meant for the person who ran the command: it names the file (or option) and
what is wrong with it. The CLI prints the message and exits with status 2 instead of a traceback.
"""

from __future__ import annotations


class SingsongError(Exception):
    """Base class of every error the project raises on purpose (bad input, bad configuration)."""
