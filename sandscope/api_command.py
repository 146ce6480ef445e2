"""`sandscope api <action> [--json ARGS]`: any E2B action from the shell, answered in JSON."""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import typing
from typing import IO, Any

from pydantic import BaseModel, ValidationError, validate_call
from pydantic_core import to_jsonable_python

from e2bapi import E2BClient
from e2bapi.catalog import ACTIONS_BY_NAME, CATALOG, ActionEntry

EXIT_API_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """The command line asked for something that cannot be sent."""


def add_api_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `api` and one sub-command per action of the catalog."""
    api = subparsers.add_parser(
        "api",
        help="call one E2B API action and print the answer as JSON",
        description=(
            "Call one E2B API action and print its answer as JSON on stdout. Arguments go in "
            "--json as an object of the action's parameters ('-' reads it from stdin). "
            "Errors go to stderr; the exit code is 1 for an API error, 2 for bad usage."
        ),
    )
    actions = api.add_subparsers(dest="action", metavar="<action>", required=True)
    for entry in CATALOG:
        action = actions.add_parser(
            entry.name,
            help=f"{entry.summary} [{entry.endpoint}]",
            description=f"{entry.summary}\n\n{entry.endpoint}\n\n{describe_parameters(entry)}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        action.add_argument(
            "--json",
            dest="json_args",
            metavar="ARGS",
            default="{}",
            help="the action's arguments as a JSON object, or - to read them from stdin",
        )


def describe_parameters(entry: ActionEntry) -> str:
    """One line per parameter: name, type and default; models list their fields."""
    hints = typing.get_type_hints(entry.factory)
    lines = ["parameters (keys of --json):"]
    for name, parameter in inspect.signature(entry.factory).parameters.items():
        if name == "clock":
            continue
        hint = hints.get(name)
        shown = _type_name(hint)
        if parameter.default is inspect.Parameter.empty:
            note = "filled from E2B_TEAM_ID if omitted" if name == "team_id" else "required"
        else:
            note = f"default {parameter.default!r}"
        lines.append(f"  {name}: {shown} ({note})")
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            lines.extend(_model_fields(hint))
    if len(lines) == 1:
        lines.append("  (none)")
    return "\n".join(lines)


def _type_name(hint: object) -> str:
    """`list[e2bapi.models.sandboxes.VolumeMount] | None` as `list[VolumeMount] | None`."""
    if isinstance(hint, type):
        return hint.__name__
    return re.sub(r"\b(?:[a-z_]\w*\.)+(\w+)", r"\1", str(hint))


def _model_fields(model: type[BaseModel]) -> list[str]:
    return [
        f"    {field.alias or name}{'' if field.is_required() else '?'}: "
        f"{_type_name(field.annotation)}"
        for name, field in model.model_fields.items()
    ]


def run_api_command(
    client: E2BClient,
    action_name: str,
    json_args: str,
    *,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
) -> None:
    """Run one action and print its answer (default: on sys.stdout); raises UsageError or
    E2BError."""
    entry = ACTIONS_BY_NAME[action_name]
    arguments = parse_arguments(json_args, stdin or sys.stdin)
    if entry.needs_team_id and "team_id" not in arguments:
        arguments["team_id"] = client.resolve_team_id()
    try:
        action = validate_call(entry.factory)(**arguments)
    except ValidationError as invalid:
        raise UsageError(f"{action_name}: {_describe_invalid(invalid)}") from None
    except TypeError as wrong:
        raise UsageError(f"{action_name}: {wrong}") from None
    try:
        result = client.run(action)
    except ValueError as bad_value:  # an action's own check of its arguments
        raise UsageError(f"{action_name}: {bad_value}") from None
    out = stdout or sys.stdout
    json.dump(to_jsonable_python(result, by_alias=True), out, indent=2)
    out.write("\n")


def parse_arguments(json_args: str, stdin: IO[str]) -> dict[str, Any]:
    """The --json object as a dict; anything else is a UsageError."""
    text = stdin.read() if json_args == "-" else json_args
    try:
        arguments = json.loads(text)
    except ValueError as not_json:
        raise UsageError(f"--json is not valid JSON: {not_json}") from None
    if not isinstance(arguments, dict):
        raise UsageError("--json must be a JSON object of the action's parameters")
    return arguments


def _describe_invalid(invalid: ValidationError) -> str:
    problems = []
    for error in invalid.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
