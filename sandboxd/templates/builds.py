"""Template builds in the background: a queue, at most N at once, each with a time limit.

A build runs in a box of its parent template, made through the sandbox manager like any
sandbox (the build's limits, outbound network on, listed with the metadata
`sandboxd.templateBuild`). Each step runs there (steps.py) and leaves a layer (layers.py)
keyed by its parent's key and the step: a later build whose steps match, up to a point,
starts from that layer without rerunning them, unless `force`. Builds survive nothing: a
restart ends the running ones as errors (catalog.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from sandboxd.agent.messages import AgentError
from sandboxd.manager import SandboxManager
from sandboxd.planning import CreateRequest
from sandboxd.problems import ApiProblem
from sandboxd.records import iso
from sandboxd.store import Store
from sandboxd.templates.builtin import Template
from sandboxd.templates.catalog import TemplateCatalog
from sandboxd.templates.files import ContextFiles
from sandboxd.templates.layers import LayerError, capture_home, restore_home
from sandboxd.templates.records import BuildEntry, LayerEntry, StepState, TemplateEntry
from sandboxd.templates.startup import wait_ready
from sandboxd.templates.steps import StepFailed, check_step, describe, run_step

log = logging.getLogger(__name__)

# E2B's default base image (the SDK's `from_base_image()`): the host's userland, `base`.
BASE_IMAGES = ("e2bdev/base", "e2bdev/base:latest", "docker.io/e2bdev/base:latest")
BASE_STEP = "base"  # the SDK's names of the first and last phases (e2b/template/consts.py)
FINALIZE_STEP = "finalize"
MAX_STEPS = 200
MAX_ARGS_CHARS = 256 * 1024  # all steps' arguments together: the build record keeps them
MAX_LOG_LINES_PER_BUILD = 10_000  # older lines are dropped from the store past this
READY_TIMEOUT_S = 60.0
STEP_FILES_TYPES = ("RUN", "COPY", "WORKDIR")  # steps that may change the home
BUILD_BOX_METADATA = "sandboxd.templateBuild"


class BuildError(Exception):
    """The build failed at `step` (the SDK's step name: "base", "1"..., "finalize")."""

    def __init__(self, message: str, step: str) -> None:
        super().__init__(message)
        self.step = step


def parse_start(body: dict[str, Any]) -> dict[str, Any]:
    """The start request (TemplateBuildStartV2), checked; ApiProblem 400 when wrong."""
    steps = body.get("steps") or []
    if not isinstance(steps, list) or len(steps) > MAX_STEPS:
        raise ApiProblem(400, f"'steps' must be a list of at most {MAX_STEPS} steps")
    try:
        checked = [check_step(step, index + 1) for index, step in enumerate(steps)]
    except ValueError as bad:
        raise ApiProblem(400, str(bad)) from None
    if sum(len(arg) for step in checked for arg in step["args"]) > MAX_ARGS_CHARS:
        raise ApiProblem(400, f"the steps' arguments are over {MAX_ARGS_CHARS} characters")
    request: dict[str, Any] = {"steps": checked, "force": body.get("force") is True}
    for name in ("fromImage", "fromTemplate", "startCmd", "readyCmd"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiProblem(400, f"'{name}' must be of type str")
        request[name] = value
    if body.get("fromImageRegistry") is not None:
        raise ApiProblem(400, "private registries (fromImageRegistry) are not supported")
    if not request["fromImage"] and not request["fromTemplate"]:
        raise ApiProblem(400, "one of 'fromImage' and 'fromTemplate' is required")
    return request


def _key(parent_key: str, step: dict[str, Any]) -> str:
    wire = json.dumps([step["type"], step["args"], step["filesHash"]], separators=(",", ":"))
    return hashlib.sha256(f"{parent_key}\n{wire}".encode()).hexdigest()


class TemplateBuilds:
    """The build queue and the builds' logs."""

    def __init__(
        self,
        manager: SandboxManager,
        catalog: TemplateCatalog,
        files: ContextFiles,
        *,
        max_concurrent: int,
        timeout_s: int,
        max_layer_bytes: int,
    ) -> None:
        self.manager = manager
        self.catalog = catalog
        self.files = files
        self.timeout_s = timeout_s
        self.max_layer_bytes = max_layer_bytes
        self._slots = asyncio.Semaphore(max_concurrent)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._next_seq: dict[str, int] = {}

    @property
    def store(self) -> Store:
        return self.catalog.store

    # --- the queue ---------------------------------------------------------------------

    def start(self, template: TemplateEntry, build: BuildEntry, request: dict[str, Any]) -> None:
        """Queue the build (202); a build already started is a 400, as E2B refuses it."""
        if build.request is not None:
            raise ApiProblem(400, f"build '{build.build_id}' has already been started")
        build.request = request
        build.start_cmd, build.ready_cmd = request["startCmd"], request["readyCmd"]
        self.catalog.save_build(build)
        self.log(build, "info", f"Build {build.build_id} of template {template.name} queued")
        self._tasks[build.build_id] = asyncio.create_task(self._run(template, build))

    def cancel_template(self, template_id: str) -> None:
        """Stop the template's running builds (before it is deleted)."""
        for build_id, task in list(self._tasks.items()):
            build = self.catalog.builds.get(build_id)
            if build is not None and build.template_id == template_id:
                task.cancel()

    async def shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, template: TemplateEntry, build: BuildEntry) -> None:
        try:
            async with self._slots:
                build.status = "building"
                self.catalog.save_build(build)
                async with asyncio.timeout(self.timeout_s):
                    await self._build(template, build)
            self.log(build, "info", "Build finished: the template is ready")
            self.catalog.finish(build, "ready", None)
        except BuildError as failed:
            self._fail(build, str(failed), failed.step)
        except TimeoutError:
            self._fail(
                build,
                f"the build ran longer than {self.timeout_s} s (SANDBOXD_BUILD_TIMEOUT_S)",
                FINALIZE_STEP,
            )
        except asyncio.CancelledError:
            if build.build_id in self.catalog.builds:
                self._fail(
                    build,
                    "the build was stopped (sandboxd stopped or the template was deleted)",
                    FINALIZE_STEP,
                )
            raise
        except Exception as failure:  # a build's boundary: the caller sees it in the status
            log.exception("build %s failed", build.build_id)
            self._fail(build, f"internal error: {type(failure).__name__}: {failure}", FINALIZE_STEP)
        finally:
            self._tasks.pop(build.build_id, None)

    def _fail(self, build: BuildEntry, message: str, step: str) -> None:
        self.log(build, "error", f"Build failed: {message}", step)
        entries = [
            entry
            for _, entry in self.store.build_logs(
                build.build_id, max(0, self._next_seq.get(build.build_id, 0) - 20), 20
            )
        ]
        reason: dict[str, object] = {"message": message, "step": step, "logEntries": entries}
        self.catalog.finish(build, "error", reason)

    # --- one build ---------------------------------------------------------------------

    def _parent(self, template: TemplateEntry, request: dict[str, Any]) -> Template:
        image, parent_name = request["fromImage"], request["fromTemplate"]
        if image:
            if image not in BASE_IMAGES:
                raise BuildError(
                    f"fromImage {image!r} cannot be made here: sandboxd builds from E2B's "
                    f"default base image ({', '.join(BASE_IMAGES[:2])}, which is the host's "
                    "userland, the 'base' template) or fromTemplate any ready template",
                    BASE_STEP,
                )
            parent_name = "base"
        parent = self.manager.templates.find(parent_name)
        if parent is None:
            raise BuildError(
                f"fromTemplate {parent_name!r}: no such template with a ready build", BASE_STEP
            )
        return parent

    async def _build(self, template: TemplateEntry, build: BuildEntry) -> None:
        request = build.request
        assert request is not None
        parent = self._parent(template, request)
        self.log(
            build, "info", f"FROM template {parent.alias} (build {parent.build_id})", BASE_STEP
        )
        steps: list[dict[str, Any]] = request["steps"]
        # Keys start from the template itself: its layers (and their files) are its own,
        # so deleting another template with the same parent and steps leaves them alone.
        root = f"template {template.template_id} parent {parent.template_id} {parent.build_id}"
        key = hashlib.sha256(root.encode()).hexdigest()
        parent_layer = LayerEntry(
            layer_key=key,
            template_id=template.template_id,
            home_tar=parent.layer_file.name if parent.layer_file is not None else None,
            state=StepState(envs=dict(parent.envs), workdir=parent.workdir),
        )
        if key not in self.catalog.layers:
            self.catalog.add_layer(parent_layer)
        last = self.catalog.layers[key]
        forcing = request["force"]
        first_to_run = len(steps)
        keys = []
        for index, step in enumerate(steps):
            key = _key(key, step)
            keys.append(key)
            cached = self.catalog.layers.get(key)
            forcing = forcing or step["force"]
            usable = (
                cached is not None
                and cached.template_id == template.template_id
                and (
                    cached.home_tar is None or (self.catalog.layers_dir / cached.home_tar).is_file()
                )
            )
            if forcing or not usable:
                first_to_run = index
                break
            assert cached is not None
            last = cached
            self.log(
                build, "info", f"CACHED [{index + 1}/{len(steps)}] {describe(step)}", str(index + 1)
            )
        for index in range(first_to_run + 1, len(steps)):
            keys.append(_key(keys[-1], steps[index]))
        if first_to_run < len(steps) or request["readyCmd"] or request["startCmd"]:
            last = await self._run_in_box(template, build, parent, steps, keys, first_to_run, last)
        build.layer_key = last.layer_key
        build.state = last.state

    async def _run_in_box(
        self,
        template: TemplateEntry,
        build: BuildEntry,
        parent: Template,
        steps: list[dict[str, Any]],
        keys: list[str],
        first_to_run: int,
        last: LayerEntry,
    ) -> LayerEntry:
        create = CreateRequest(
            template=parent.template_id,
            timeout_s=min(self.timeout_s, self.manager.max_length_s),
            allow_internet_access=True,
            metadata={BUILD_BOX_METADATA: build.build_id},
            cpu_count=build.cpu_count,
            memory_mb=build.memory_mb,
            disk_size_mb=max(build.disk_size_mb, parent.disk_size_mb),
        )
        try:
            record = await self.manager.create(create)
        except ApiProblem as refused:
            raise BuildError(
                f"the build box could not start: {refused.message}", BASE_STEP
            ) from None
        box_id = record.sandbox_id
        self.log(build, "info", f"Build box {box_id} started", BASE_STEP)
        try:
            agent = self.manager.get(box_id).agent
            path = self.catalog.layer_path(last)
            if first_to_run > 0 and path is not None:
                await restore_home(agent, path, clean=True, timeout_s=self.timeout_s)
            state = last.state
            for index in range(first_to_run, len(steps)):
                step, name = steps[index], str(index + 1)
                self.log(build, "info", f"[{name}/{len(steps)}] {describe(step)}", name)
                try:
                    state = await run_step(
                        agent,
                        step,
                        state,
                        self.files,
                        self._step_log(build, name),
                        self.timeout_s,
                    )
                    last = await self._keep_layer(template, agent, keys[index], step, state, last)
                except AgentError as broken:  # the box ended under the step (OOM, say)
                    raise BuildError(
                        f"step {name} ({describe(step)}): the build box ended or its agent "
                        f"failed ({broken}); more memory (memory_mb) may help",
                        name,
                    ) from None
                except (StepFailed, LayerError) as failed:
                    raise BuildError(
                        f"step {name} ({describe(step)}) failed: {failed}", name
                    ) from None
            await self._finalize(build, agent, state)
            return last
        finally:
            if box_id in self.manager.live:
                await self.manager.kill(box_id, "template build finished")

    async def _keep_layer(
        self,
        template: TemplateEntry,
        agent: Any,
        key: str,
        step: dict[str, Any],
        state: StepState,
        last: LayerEntry,
    ) -> LayerEntry:
        home_tar = last.home_tar
        size = last.size_bytes
        if step["type"] not in STEP_FILES_TYPES:
            layer = LayerEntry(key, template.template_id, home_tar, state, size)
            self.catalog.add_layer(layer)
            return layer
        home_tar = f"{key}.tar"
        self.catalog.pending_files.add(home_tar)
        try:
            size = await capture_home(
                agent, self.catalog.layers_dir / home_tar, self.max_layer_bytes, self.timeout_s
            )
            layer = LayerEntry(key, template.template_id, home_tar, state, size)
            self.catalog.add_layer(layer)
        finally:
            self.catalog.pending_files.discard(home_tar)
        return layer

    async def _finalize(self, build: BuildEntry, agent: Any, state: StepState) -> None:
        if not build.start_cmd and not build.ready_cmd:
            return
        probe = Template(
            template_id="",
            alias="",
            cpu_count=1,
            memory_mb=1,
            disk_size_mb=1,
            build_id="",
            envs=state.envs,
            workdir=state.workdir,
            start_cmd=build.start_cmd,
            ready_cmd=build.ready_cmd,
        )
        if build.start_cmd:
            self.log(build, "info", f"Start command: {build.start_cmd}", FINALIZE_STEP)
            await agent.start_process(
                "/bin/bash", ["-c", build.start_cmd], envs=state.envs, cwd=state.workdir or None
            )
        if build.ready_cmd:
            self.log(
                build, "info", f"Waiting for the ready command: {build.ready_cmd}", FINALIZE_STEP
            )
            last_output: list[str] = []
            if not await wait_ready(agent, probe, READY_TIMEOUT_S, last_output):
                for line in last_output:
                    self.log(build, "error", line, FINALIZE_STEP)
                raise BuildError(
                    f"the ready command did not succeed within {READY_TIMEOUT_S:.0f} s",
                    FINALIZE_STEP,
                )

    def _step_log(self, build: BuildEntry, step: str) -> Callable[[str, str], None]:
        def write(level: str, message: str) -> None:
            self.log(build, level, message, step)

        return write

    # --- logs --------------------------------------------------------------------------

    def log(self, build: BuildEntry, level: str, message: str, step: str | None = None) -> None:
        """One line of the build's log (the store keeps the last MAX_LOG_LINES_PER_BUILD)."""
        seq = self._next_seq.get(build.build_id)
        if seq is None:
            last = self.store.last_build_log_seq(build.build_id)
            seq = 0 if last is None else last + 1
        entry: dict[str, Any] = {
            "timestamp": iso(self.catalog.clock()),
            "level": level,
            "message": message,
        }
        if step is not None:
            entry["step"] = step
        self.store.add_build_log(build.build_id, seq, entry)
        self._next_seq[build.build_id] = seq + 1
        if seq >= MAX_LOG_LINES_PER_BUILD and seq % 100 == 0:
            self.store.forget_build_logs_before(build.build_id, seq - MAX_LOG_LINES_PER_BUILD)
