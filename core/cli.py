"""The `singsong` command line.

Commands are grouped (`singsong corpus synth`, `singsong train codec`, ...). Each feature module owns its
subcommands and registers them through a `register(groups)` function, so this file only wires groups
together and turns expected errors into one-line messages. Handlers import their heavy dependencies
(torch, librosa) lazily, which keeps `singsong --help` instant.

The command modules are named by string and imported when the parser is built: the CLI frame lives in the
base layer and depends on none of the layers above it, which plug their commands in.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from core.errors import SingsongError

#: Command groups, in the order `singsong --help` lists them.
GROUPS: dict[str, str] = {
    "corpus": "make or inspect training corpora",
    "pipeline": "separate a music corpus into aligned vocal/instrumental pairs",
    "tokens": "encode a corpus of pairs into token arrays",
    "train": "train a model (codec, semantic tokenizer, separator, cascade stages)",
    "eval": "evaluate a trained model",
    "service": "run and administer the REST service",
}

#: Modules exposing `register(groups: dict[str, argparse._SubParsersAction]) -> None`.
COMMAND_MODULES: list[str] = [
    "pipelines.corpus.cli",
    "pipelines.inference.retrieval_library",
    "pipelines.separation.cli",
    "pipelines.training.separator",
    "pipelines.evaluation.separator",
    "pipelines.pairs.cli",
    "pipelines.training.codec",
    "pipelines.training.semantic",
    "pipelines.training.cascade",
    "pipelines.inference.assemble",
    "pipelines.evaluation.cascade",
    "pipelines.evaluation.codec",
    "pipelines.evaluation.accompaniment",
    "pipelines.evaluation.report",
    "pipelines.tokens.cli",
    "pipelines.inference.cli",
    "pipelines.inference.batch",
    "service.cli",
]

Handler = Callable[[argparse.Namespace], int | None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="singsong", description="SingSong-style accompaniment generation for sung vocals."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    top = parser.add_subparsers(dest="group", metavar="COMMAND")
    top.required = True
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, help_text in GROUPS.items():
        group_parser = top.add_parser(name, help=help_text)
        sub = group_parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
        sub.required = True
        groups[name] = sub
    groups["_top"] = top  # for commands without a group, such as `singsong accompany`
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        return int(handler(args) or 0)
    except SingsongError as error:
        print(f"singsong: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("singsong: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
