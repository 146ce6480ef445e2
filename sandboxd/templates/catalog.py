"""The built templates, their builds and layers: in memory, every change saved to the store.

A template is found by ID or name; `name:tag` picks a tagged build. Its sandboxes start
from its newest ready build (or the tag's), with that build's limits, environment, start
and ready commands and layer.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sandboxd.private_files import DIR_MODE
from sandboxd.problems import ApiProblem
from sandboxd.records import iso
from sandboxd.store import Store
from sandboxd.templates.builtin import Template, find_built_in
from sandboxd.templates.names import DEFAULT_TAG, check_tag_room, split_name
from sandboxd.templates.records import RUNNING_STATUSES, BuildEntry, LayerEntry, TemplateEntry

TEMPLATE_ID_ALPHABET = string.ascii_lowercase + string.digits
TEMPLATE_ID_LENGTH = 20
# Builds kept per template (the newest, and every build a tag points at).
MAX_BUILDS_PER_TEMPLATE = 50
# Layers kept per template: past it the oldest that no build ends on go (the step cache
# then reruns their steps) and so do their files once nothing else refers to them.
MAX_LAYERS_PER_TEMPLATE = 100
RESTARTED = "sandboxd restarted while the build ran"


class TemplateCatalog:
    """Every template made through the API (the built-in ones are in builtin.py)."""

    def __init__(
        self, store: Store, layers_dir: Path, max_templates: int, clock: Callable[[], datetime]
    ) -> None:
        layers_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        self.store = store
        self.layers_dir = layers_dir
        self.max_templates = max_templates
        self.clock = clock
        self.templates = {t["template_id"]: TemplateEntry.from_json(t) for t in store.templates()}
        self.builds: dict[str, BuildEntry] = {}
        for data in store.builds():
            build = BuildEntry.from_json(data)
            if build.template_id in self.templates:
                self.builds[build.build_id] = build
        self.layers = {data["layer_key"]: LayerEntry.from_json(data) for data in store.layers()}
        # Layer files a build is writing, not yet in a layer record: never removed as unused.
        self.pending_files: set[str] = set()
        # A layer file whose record never got written (a build stopped mid-step) goes, and
        # so does a copy that a killed sandboxd left half done.
        self.remove_unused_layer_files()
        for partial in layers_dir.glob(".*.partial"):
            partial.unlink(missing_ok=True)

    def fail_unfinished(self) -> list[str]:
        """Builds that were running when sandboxd stopped end as errors; say which."""
        failed = []
        for build in self.builds.values():
            # One never started (no start request yet) may still be started after this.
            if build.status in RUNNING_STATUSES and build.request is not None:
                self.finish(build, "error", {"message": RESTARTED})
                failed.append(build.build_id)
        return failed

    # --- templates ---------------------------------------------------------------------

    def lookup(self, id_or_name: str) -> TemplateEntry | None:
        """A template by ID or name (a `:tag` suffix is ignored here)."""
        if id_or_name in self.templates:
            return self.templates[id_or_name]
        name = id_or_name.partition(":")[0]
        return next((t for t in self.templates.values() if t.name == name), None)

    def get(self, id_or_name: str) -> TemplateEntry:
        """A template or a 404, as E2B answers for one the team does not have."""
        template = self.lookup(id_or_name)
        if template is None:
            raise ApiProblem(404, f"template '{id_or_name}' not found")
        return template

    def request_build(
        self,
        raw_name: str,
        tags: list[str],
        cpu_count: int,
        memory_mb: int,
        disk_size_mb: int,
    ) -> tuple[TemplateEntry, BuildEntry, list[str]]:
        """`POST /v3/templates`: a new build of the template named `raw_name` (made if new;
        as on E2B, a name the team already has gets a new build of that template)."""
        name, tag = split_name(raw_name)
        if find_built_in(name) is not None:
            raise ApiProblem(400, f"template name '{name}' is taken by a built-in template")
        wanted_tags = list(dict.fromkeys([*([tag] if tag else []), *tags])) or [DEFAULT_TAG]
        now = iso(self.clock())
        template = self.lookup(name)
        if template is None:
            if len(self.templates) >= self.max_templates:
                raise ApiProblem(
                    400,
                    f"the team has {len(self.templates)} templates, the most allowed "
                    "(SANDBOXD_MAX_TEMPLATES); delete one first",
                )
            template = TemplateEntry(
                template_id=self._new_template_id(),
                name=name,
                cpu_count=cpu_count,
                memory_mb=memory_mb,
                disk_size_mb=disk_size_mb,
                created_at=now,
                updated_at=now,
            )
        check_tag_room(template.tags, wanted_tags)
        template.cpu_count, template.memory_mb = cpu_count, memory_mb
        template.disk_size_mb, template.updated_at = disk_size_mb, now
        build = BuildEntry(
            build_id=str(uuid.uuid4()),
            template_id=template.template_id,
            status="waiting",
            created_at=now,
            updated_at=now,
            cpu_count=cpu_count,
            memory_mb=memory_mb,
            disk_size_mb=disk_size_mb,
        )
        for each in wanted_tags:
            template.tags[each] = {"build_id": build.build_id, "created_at": now}
        self.templates[template.template_id] = template
        self.save_template(template)
        self.builds[build.build_id] = build
        self.save_build(build)
        self._forget_old_builds(template)
        return template, build, wanted_tags

    def save_template(self, template: TemplateEntry) -> None:
        self.store.save_template(template.template_id, template.to_json())

    def builds_of(self, template_id: str) -> list[BuildEntry]:
        """A template's builds, newest first."""
        found = [b for b in self.builds.values() if b.template_id == template_id]
        return sorted(found, key=lambda b: b.created_at, reverse=True)

    def latest_ready(self, template: TemplateEntry) -> BuildEntry | None:
        return next((b for b in self.builds_of(template.template_id) if b.status == "ready"), None)

    def delete(self, template: TemplateEntry) -> None:
        """The template, its builds and its layers (a layer file once nothing refers to it;
        running sandboxes hold their own copy of their home, so none needs it)."""
        for build in self.builds_of(template.template_id):
            del self.builds[build.build_id]
        del self.templates[template.template_id]
        self.store.delete_template(template.template_id)
        for key in [
            k for k, layer in self.layers.items() if layer.template_id == template.template_id
        ]:
            self.store.delete_layer(key)
            del self.layers[key]
        self.remove_unused_layer_files()

    def remove_unused_layer_files(self) -> None:
        used = {layer.home_tar for layer in self.layers.values()} | self.pending_files
        for path in self.layers_dir.glob("*.tar"):
            if path.name not in used:
                path.unlink(missing_ok=True)

    # --- builds ------------------------------------------------------------------------

    def build(self, template: TemplateEntry, build_id: str) -> BuildEntry:
        """A build of the template; E2B's 400 "Build '<id>' not found" otherwise."""
        build = self.builds.get(build_id)
        if build is None or build.template_id != template.template_id:
            raise ApiProblem(400, f"Build '{build_id}' not found")
        return build

    def save_build(self, build: BuildEntry) -> None:
        build.updated_at = iso(self.clock())
        self.store.save_build(build.build_id, build.template_id, build.to_json())

    def finish(self, build: BuildEntry, status: str, reason: dict[str, object] | None) -> None:
        build.status = "ready" if status == "ready" else "error"
        build.reason = reason
        build.finished_at = iso(self.clock())
        self.save_build(build)

    def _forget_old_builds(self, template: TemplateEntry) -> None:
        tagged = {entry["build_id"] for entry in template.tags.values()}
        builds = self.builds_of(template.template_id)
        for build in builds[MAX_BUILDS_PER_TEMPLATE:]:
            if build.build_id not in tagged and build.status not in RUNNING_STATUSES:
                del self.builds[build.build_id]
                self.store.delete_build(build.build_id)

    # --- layers ------------------------------------------------------------------------

    def layer_path(self, layer: LayerEntry) -> Path | None:
        return None if layer.home_tar is None else self.layers_dir / layer.home_tar

    def add_layer(self, layer: LayerEntry) -> None:
        if not layer.created_at:
            layer.created_at = iso(self.clock())
        self.layers[layer.layer_key] = layer
        self.store.save_layer(layer.layer_key, layer.template_id, layer.to_json())
        self._forget_old_layers(layer.template_id)

    def _forget_old_layers(self, template_id: str) -> None:
        own = [layer for layer in self.layers.values() if layer.template_id == template_id]
        if len(own) <= MAX_LAYERS_PER_TEMPLATE:
            return
        ends = {build.layer_key for build in self.builds.values()}
        own.sort(key=lambda layer: layer.created_at)
        for layer in own[: len(own) - MAX_LAYERS_PER_TEMPLATE]:
            if layer.layer_key not in ends:
                del self.layers[layer.layer_key]
                self.store.delete_layer(layer.layer_key)
        self.remove_unused_layer_files()

    # --- what sandboxes start from -----------------------------------------------------

    def startable(self, raw_name: str) -> Template | None:
        """The template `raw_name` names (ID, name, name:tag) as a sandbox starts from it:
        None when there is none or it has no ready build."""
        template = self.lookup(raw_name)
        if template is None:
            return None
        _, colon, tag = raw_name.partition(":")
        if colon and raw_name not in self.templates:
            tagged = template.tags.get(tag)
            build = self.builds.get(tagged["build_id"]) if tagged else None
            if build is None or build.status != "ready":
                return None
        else:
            build = self.latest_ready(template)
            if build is None:
                return None
        layer = self.layers.get(build.layer_key or "")
        return Template(
            template_id=template.template_id,
            alias=template.name,
            cpu_count=build.cpu_count,
            memory_mb=build.memory_mb,
            disk_size_mb=build.disk_size_mb,
            build_id=build.build_id,
            envs=dict(build.state.envs),
            workdir=build.state.workdir,
            start_cmd=build.start_cmd,
            ready_cmd=build.ready_cmd,
            layer_file=None if layer is None else self.layer_path(layer),
        )

    def _new_template_id(self) -> str:
        while True:
            candidate = "".join(
                secrets.choice(TEMPLATE_ID_ALPHABET) for _ in range(TEMPLATE_ID_LENGTH)
            )
            if candidate not in self.templates:
                return candidate
