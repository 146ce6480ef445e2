"""Template names and tags as E2B takes them: `name`, `name:tag`, lowercase, bounded."""

from __future__ import annotations

import re
from collections.abc import Collection

from sandboxd.problems import ApiProblem

MAX_NAME_CHARS = 128  # the spec's maxLength of `name`
MAX_TAG_CHARS = 64
MAX_TAGS = 10  # per request
MAX_TAGS_PER_TEMPLATE = 100
DEFAULT_TAG = "default"  # what a build without a tag gets, as on E2B

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TAG = re.compile(r"[a-z0-9][a-z0-9._-]*")


def check_name(name: str) -> str:
    """`name` if E2B would take it as a template name (400 otherwise)."""
    if not name:
        raise ApiProblem(400, "template name is required")
    if len(name) > MAX_NAME_CHARS:
        raise ApiProblem(400, f"template name must be at most {MAX_NAME_CHARS} characters")
    if not _NAME.fullmatch(name):
        raise ApiProblem(
            400,
            f"invalid template name {name!r}: use lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit",
        )
    return name


def check_tag(tag: str) -> str:
    """`tag` if it is a valid tag (400 otherwise)."""
    if not tag or len(tag) > MAX_TAG_CHARS or not _TAG.fullmatch(tag):
        raise ApiProblem(
            400,
            f"invalid tag {tag!r}: use 1 to {MAX_TAG_CHARS} lowercase letters, digits, '.', "
            "'-' and '_', starting with a letter or digit",
        )
    return tag


def check_tag_room(existing: Collection[str], adding: list[str]) -> None:
    """400 when `adding` would give a template more than MAX_TAGS_PER_TEMPLATE tags."""
    if len(set(existing) | set(adding)) > MAX_TAGS_PER_TEMPLATE:
        raise ApiProblem(
            400, f"a template has at most {MAX_TAGS_PER_TEMPLATE} tags; delete some first"
        )


def split_name(raw: str) -> tuple[str, str | None]:
    """`name:tag` as (name, tag), each checked; (name, None) without a tag."""
    name, colon, tag = raw.partition(":")
    return check_name(name), (check_tag(tag) if colon else None)


def check_tags(tags: object) -> list[str]:
    """A request's `tags`: a list of at most MAX_TAGS valid tags, without repeats."""
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ApiProblem(400, "'tags' must be a list of strings")
    if len(tags) > MAX_TAGS:
        raise ApiProblem(400, f"at most {MAX_TAGS} tags, got {len(tags)}")
    return list(dict.fromkeys(check_tag(tag) for tag in tags))
