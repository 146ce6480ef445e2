"""Templates as sandboxd runs them: the catalog, the uploaded files and the build queue."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxd.config import SandboxdSettings
from sandboxd.manager import SandboxManager
from sandboxd.private_files import DIR_MODE
from sandboxd.templates.builds import TemplateBuilds
from sandboxd.templates.catalog import TemplateCatalog
from sandboxd.templates.files import ContextFiles


@dataclass(frozen=True)
class TemplateService:
    catalog: TemplateCatalog
    files: ContextFiles
    builds: TemplateBuilds
    manager: SandboxManager

    async def close(self) -> None:
        """Stop the running builds (they end as errors) and forget the catalog."""
        await self.builds.shutdown()
        self.manager.templates.catalog = None


def open_templates(settings: SandboxdSettings, manager: SandboxManager) -> TemplateService:
    """The templates of `settings.templates_dir`; builds cut off by a restart end as errors,
    and the manager's template lookup (sandbox creates) now knows the built templates."""
    settings.templates_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    catalog = TemplateCatalog(
        manager.store, settings.templates_dir / "layers", settings.max_templates, manager.clock
    )
    catalog.fail_unfinished()
    files = ContextFiles(settings.templates_dir / "files", settings.max_template_upload_mb * 2**20)
    builds = TemplateBuilds(
        manager,
        catalog,
        files,
        max_concurrent=settings.max_concurrent_builds,
        timeout_s=settings.build_timeout_s,
        max_layer_bytes=settings.max_layer_mb * 2**20,
    )
    manager.templates.catalog = catalog
    return TemplateService(catalog, files, builds, manager)
