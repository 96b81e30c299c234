"""What every ``python -m pipeline`` subcommand shares: JSON options and the subparser shape.

cli.py and the packages with commands of their own (fid, figures, claims) register theirs
through ``add_command``, so each command is built the same way.
"""

from __future__ import annotations

import json
from pathlib import Path


def json_arg(text: str | None) -> dict:
    """A JSON object, or @path to a JSON/YAML file holding one; None -> {}."""
    if text is None:
        return {}
    if text.startswith("@"):
        import yaml

        return yaml.safe_load(Path(text[1:]).read_text())
    return json.loads(text)


def add_command(subparsers, name: str, func, help_text: str, config: bool = True):
    """A subcommand that calls ``func(args)``; with ``config``, a ``--config`` option for running
    it by hand from config files instead of the JSON a rule passes."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=func)
    if config:
        parser.add_argument("--config", nargs="+", default=[], metavar="YAML", help="overlays merged over config/config.yaml when no JSON is given")
    return parser
