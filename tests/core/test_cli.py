import subprocess
import sys

import pytest

from core.cli import GROUPS, build_parser, main


def test_every_group_is_listed_in_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for group in GROUPS:
        assert group in out


def test_every_registered_command_has_a_handler():
    parser = build_parser()
    top = next(a for a in parser._actions if a.dest == "group")
    for name, group_parser in top.choices.items():
        sub = next((a for a in group_parser._actions if a.dest == "command"), None)
        commands = sub.choices.items() if sub is not None else [(name, group_parser)]
        for command, command_parser in commands:
            assert command_parser.get_default("handler") is not None, f"{name} {command} has no handler"


def test_unknown_command_fails_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["corpus", "nonsense"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_help_is_fast_and_imports_nothing_heavy():
    code = "import sys; from core.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "building the CLI must not import torch (keeps `singsong --help` instant)"
