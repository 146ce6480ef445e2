"""The remedy for an OOM: a right-sized template, built `fromTemplate` the one that ran out
of memory, with the suggested memory (and more vCPUs when its sandboxes were CPU-bound).

`plan_remedy` decides what would be created and `RemedyPlan.confirmation` says it in words
before anything is done; `TemplateRemedy.start` checks the name is free
(`GET /templates/aliases/{alias}`), creates the template (`POST /v3/templates`)
and starts its build (`POST /v2/templates/{id}/builds/{buildID}`), audited like every
dashboard action; the build's progress is then followed with `dashboard.templates.builds`.
Every API error comes back in words, never as an exception. No Streamlit here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from dashboard.actions.runner import ActionRunner, api_error_words
from e2bapi import E2BClient
from e2bapi.actions import create_template, start_template_build, template_by_alias
from e2bapi.errors import BadRequestError, ConflictError, E2BError, NotFoundError
from e2bapi.models.templates import TemplateBuildRequestV3, TemplateBuildStartV2
from storage import MonitorStore

AUDIT_ACTION = "create-template"
# CPU-bound: the CPU's p95 at or above this share of the vCPUs the sandbox had. Then the
# new template gets twice the vCPUs (at most `MAX_CPU_COUNT`), since a sandbox that waits
# for CPU runs longer and holds its memory longer.
CPU_BOUND_PCT = 90.0
MAX_CPU_COUNT = 8
# E2B's template names: lowercase letters, digits, "-" and "_", at most 128 characters
# (the spec's maxLength); a name may carry a team namespace ("team/name") and a tag
# (":v1"), neither of which is part of the new name.
MAX_NAME_CHARS = 128
_NOT_IN_NAME = re.compile(r"[^a-z0-9_-]+")


def new_template_name(source_name: str, memory_mb: int) -> str:
    """`<name>-<memory>`: the source's name (namespace and tag left out, made to follow
    E2B's name rules) and the memory in MiB, e.g. "small-512"."""
    base = source_name.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    base = _NOT_IN_NAME.sub("-", base).strip("-_") or "template"
    suffix = f"-{memory_mb}"
    return base[: MAX_NAME_CHARS - len(suffix)] + suffix


@dataclass(frozen=True)
class RemedyPlan:
    """What "Create a right-sized template" would create.

    `source` is the template name (or ID) the new one is built `fromTemplate`; `cpu_p95_pct`
    the CPU p95 it was judged on (None when unknown) and `cpu_basis` what that p95 is of,
    in words; `name_taken` is true when a template already has `new_name` (as last listed).
    `sandbox_ids` are the sandboxes the remedy is for (the incident's), for the audit.
    """

    source: str
    new_name: str
    memory_mb: int
    source_memory_mb: int | None
    cpu_count: int
    source_cpu_count: int
    cpu_p95_pct: float | None
    cpu_basis: str
    name_taken: bool
    sandbox_ids: tuple[str, ...] = ()

    @property
    def cpu_raised(self) -> bool:
        return self.cpu_count > self.source_cpu_count

    def confirmation(self) -> str:
        """The dialog's text: exactly what will be created, and why the vCPUs are what they
        are. Names are the API's text: pass them through `quote` in Markdown."""
        return self.confirmation_with(str)

    def confirmation_with(self, quote: Callable[[str], str]) -> str:
        """`confirmation` with the names (outside text) passed through `quote`."""
        was = "" if self.source_memory_mb is None else f" (was {self.source_memory_mb} MiB)"
        text = (
            f"Create a new template named {quote(self.new_name)}, built from template "
            f"{quote(self.source)} with nothing added, with {self.memory_mb} MiB of memory{was} "
            f"and {self.cpu_count} vCPU{'s' if self.cpu_count != 1 else ''}. "
        )
        threshold = f"{CPU_BOUND_PCT:g} %"
        if self.cpu_p95_pct is None:
            text += f"vCPUs kept at {self.source_cpu_count}: no CPU samples to judge by."
        elif self.cpu_raised:
            text += (
                f"vCPUs raised from {self.source_cpu_count}: it was CPU-bound ({self.cpu_basis} "
                f"{self.cpu_p95_pct:.0f} %, at or above {threshold})."
            )
        else:
            text += (
                f"vCPUs kept: not CPU-bound ({self.cpu_basis} {self.cpu_p95_pct:.0f} %, "
                f"below {threshold})."
            )
        text += " The original template and its sandboxes are left as they are."
        if self.name_taken:
            text += (
                f" A template named {quote(self.new_name)} exists already: nothing can be created."
            )
        return text


def plan_remedy(
    source: str,
    memory_mb: int,
    source_cpu_count: int,
    cpu_p95_pct: float | None,
    cpu_basis: str,
    taken_names: Collection[str],
    source_memory_mb: int | None = None,
    sandbox_ids: tuple[str, ...] = (),
) -> RemedyPlan:
    """The plan for a template `source` whose sandboxes need `memory_mb` (the suggestion).
    `taken_names`: the names and aliases of the team's templates (namespaces are ignored
    when comparing)."""
    if memory_mb < 128:
        raise ValueError(f"memory_mb must be 128 or more (E2B's minimum), got {memory_mb}")
    cpu_count = max(1, source_cpu_count)
    if cpu_p95_pct is not None and cpu_p95_pct >= CPU_BOUND_PCT:
        cpu_count = min(MAX_CPU_COUNT, max(cpu_count, cpu_count * 2))
    new_name = new_template_name(source, memory_mb)
    taken = {name.rsplit("/", 1)[-1].split(":", 1)[0] for name in taken_names}
    return RemedyPlan(
        source=source,
        new_name=new_name,
        memory_mb=memory_mb,
        source_memory_mb=source_memory_mb,
        cpu_count=cpu_count,
        source_cpu_count=source_cpu_count,
        cpu_p95_pct=cpu_p95_pct,
        cpu_basis=cpu_basis,
        name_taken=new_name in taken,
        sandbox_ids=sandbox_ids,
    )


@dataclass(frozen=True)
class RemedyStarted:
    """The outcome of `TemplateRemedy.start`: on success the new template's and build's
    IDs; `message` in words either way."""

    ok: bool
    message: str
    template_id: str | None = None
    build_id: str | None = None


def remedy_error_words(error: E2BError) -> str:
    """An API error while creating the template or starting its build, in words."""
    if isinstance(error, ConflictError):
        return f"a template with that name exists already (409): {error.message}"
    if isinstance(error, NotFoundError):
        return f"the API found no such template (404): {error.message}"
    if isinstance(error, BadRequestError):
        return f"the API refused the request (400): {error.message}"
    return api_error_words(error, check="the Templates page for a new template")


class TemplateRemedy:
    """Creates right-sized templates through `client`, auditing each attempt in `store`."""

    def __init__(
        self, client: E2BClient, store: MonitorStore, clock: Callable[[], datetime]
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock

    @classmethod
    def of(cls, runner: ActionRunner) -> TemplateRemedy:
        """The remedy acting through the dashboard's action runner (same client, audit)."""
        return cls(runner.client, runner.store, runner.clock)

    @property
    def client(self) -> E2BClient:
        return self._client

    def start(self, plan: RemedyPlan, actor: str) -> RemedyStarted:
        """Create the template and start its build; one audit row with `actor` and the
        outcome. A taken name is refused before any call."""
        at = self._clock()
        if plan.name_taken:
            started = RemedyStarted(False, f"not created: {plan.new_name} exists already")
        else:
            started = self._create_and_build(plan)
        self._store.record_action(
            at,
            actor,
            AUDIT_ACTION,
            list(plan.sandbox_ids),
            "ok" if started.ok else "failed",
            started.message,
        )
        return started

    def _create_and_build(self, plan: RemedyPlan) -> RemedyStarted:
        what = (
            f"template {plan.new_name} from {plan.source}, {plan.memory_mb} MiB, "
            f"{plan.cpu_count} vCPU"
        )
        # The catalog may be a minute old, and a taken name would not be refused: E2B
        # starts a new build of the template that has it, resizing someone else's.
        try:
            existing = self._client.run(template_by_alias(plan.new_name))
        except E2BError as error:
            return RemedyStarted(False, f"{what} not created: {remedy_error_words(error)}")
        if existing is not None:
            return RemedyStarted(
                False,
                f"{what} not created: template {existing.template_id} is named "
                f"{plan.new_name} already",
            )
        request = TemplateBuildRequestV3(
            name=plan.new_name, cpu_count=plan.cpu_count, memory_mb=plan.memory_mb
        )
        try:
            created = self._client.run(create_template(request))
        except E2BError as error:
            return RemedyStarted(False, f"{what} not created: {remedy_error_words(error)}")
        build = TemplateBuildStartV2(from_template=plan.source, steps=[], force=False)
        try:
            self._client.run(start_template_build(created.template_id, created.build_id, build))
        except E2BError as error:
            return RemedyStarted(
                False,
                f"{what} created ({created.template_id}) but its build did not start: "
                f"{remedy_error_words(error)}",
                created.template_id,
                created.build_id,
            )
        return RemedyStarted(
            True,
            f"{what}: created ({created.template_id}), build {created.build_id} started",
            created.template_id,
            created.build_id,
        )


def start_line(plan: RemedyPlan) -> str:
    """The line of code that starts a sandbox from the new template (E2B's Python SDK)."""
    return f'Sandbox.create("{plan.new_name}")'
