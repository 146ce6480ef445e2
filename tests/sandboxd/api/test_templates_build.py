"""Template builds through the official SDK (sync and async) against a real sandboxd: files
uploaded and copied, steps run in a build box, their result kept as a layer that the
template's sandboxes start with; failures, the step cache, root steps, images, deletion."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from e2b import AsyncSandbox, AsyncTemplate, BuildException, Sandbox, Template, wait_for_file
from e2b.template.main import TemplateClass
from e2b.template.types import BuildInfo

from sandboxd.testing import RunningSandboxd

TIMEOUT_S = 120


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "hello.txt").write_text("hello from the build context\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "numbers.csv").write_text("1,2,3\n")
    return tmp_path


@contextlib.contextmanager
def sandbox_of(name: str) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(name, timeout=TIMEOUT_S)
    try:
        yield sandbox
    finally:
        sandbox.kill()


def _build(
    template: TemplateClass, name: str, *, memory_mb: int | None = None, skip_cache: bool = False
) -> tuple[BuildInfo, list[str]]:
    logs: list[str] = []
    info = Template.build(
        template,
        name,
        memory_mb=memory_mb,
        skip_cache=skip_cache,
        on_build_logs=lambda entry: logs.append(entry.message),
    )
    return info, logs


def test_copy_and_run_reach_the_template_s_sandboxes(sdk_env: None, context: Path) -> None:
    template = (
        Template(file_context_path=str(context))
        .from_template("base")
        .copy("hello.txt", "/home/user/")
        .copy("data", "/home/user/app/data")
        .set_workdir("/home/user/app")
        .run_cmd("cat data/numbers.csv > copied-by-run.txt && echo the step printed this")
        .set_envs({"GREETING": "hello"})
    )

    info, logs = _build(template, "build-copy-run", memory_mb=256)

    assert any("the step printed this" in line for line in logs)
    with sandbox_of("build-copy-run") as sandbox:
        assert sandbox.files.read("/home/user/hello.txt") == "hello from the build context\n"
        assert sandbox.files.read("/home/user/app/copied-by-run.txt") == "1,2,3\n"
        assert sandbox.commands.run("echo $GREETING").stdout.strip() == "hello"
        info_of_box = sandbox.get_info()
    assert info_of_box.memory_mb == 256  # the template's limits are the default
    assert info_of_box.template_id == info.template_id


def test_the_async_sdk_builds_and_starts(sdk_env: None, context: Path) -> None:
    template = (
        AsyncTemplate(file_context_path=str(context))
        .from_base_image()  # E2B's default image: the host's userland here
        .copy("hello.txt", "/home/user/greeting.txt")
    )

    async def scenario() -> str:
        async with asyncio.timeout(TIMEOUT_S):
            await AsyncTemplate.build(template, "build-async")
            sandbox = await AsyncSandbox.create("build-async", timeout=TIMEOUT_S)
            try:
                return await sandbox.files.read("/home/user/greeting.txt")
            finally:
                await sandbox.kill()

    assert asyncio.run(scenario()) == "hello from the build context\n"


def test_a_failing_step_fails_the_build_with_its_logs(sdk_env: None, api: httpx.Client) -> None:
    template = Template().from_template("base").run_cmd("echo printed-before-failing; exit 3")
    logs: list[str] = []

    with pytest.raises(BuildException) as failed:
        Template.build(template, "build-fails", on_build_logs=lambda e: logs.append(e.message))

    assert "step 1" in str(failed.value) and "exit status 3" in str(failed.value)
    assert any("printed-before-failing" in line for line in logs)
    template_id = api.get("/templates/aliases/build-fails").json()["templateID"]
    build = api.get(f"/templates/{template_id}").json()["builds"][0]
    status = api.get(f"/templates/{template_id}/builds/{build['buildID']}/status").json()
    assert status["status"] == "error" and status["reason"]["step"] == "1"
    assert any("printed-before-failing" in e["message"] for e in status["reason"]["logEntries"])
    assert Template.exists("build-fails")  # the template stays; it has no ready build
    with pytest.raises(Exception, match="not found"):
        Sandbox.create("build-fails")


def test_cached_steps_are_not_rerun_unless_forced(sdk_env: None) -> None:
    template = (
        Template()
        .from_template("base")
        .run_cmd("date +%s%N > /home/user/stamp")
        .run_cmd("echo second >> /home/user/stamp")
    )

    _, first_logs = _build(template, "build-cache")
    with sandbox_of("build-cache") as sandbox:
        first = sandbox.files.read("/home/user/stamp")
    _, again_logs = _build(template, "build-cache")
    with sandbox_of("build-cache") as sandbox:
        again = sandbox.files.read("/home/user/stamp")
    _, forced_logs = _build(template, "build-cache", skip_cache=True)
    with sandbox_of("build-cache") as sandbox:
        forced = sandbox.files.read("/home/user/stamp")

    assert not any(line.startswith("CACHED") for line in first_logs)
    assert sum(line.startswith("CACHED") for line in again_logs) == 2
    assert again == first and first.endswith("second\n")  # the step did not run again
    assert not any(line.startswith("CACHED") for line in forced_logs)
    assert forced != first and forced.count("second") == 1


def test_a_changed_step_reruns_from_there(sdk_env: None) -> None:
    base = Template().from_template("base").run_cmd("date +%s%N > /home/user/stamp")
    _build(base.run_cmd("echo one > /home/user/last"), "build-partial")
    with sandbox_of("build-partial") as sandbox:
        first = sandbox.files.read("/home/user/stamp")

    changed = Template().from_template("base").run_cmd("date +%s%N > /home/user/stamp")
    _, logs = _build(changed.run_cmd("echo two > /home/user/last"), "build-partial")

    with sandbox_of("build-partial") as sandbox:
        assert sandbox.files.read("/home/user/stamp") == first
        assert sandbox.files.read("/home/user/last") == "two\n"
    assert sum(line.startswith("CACHED") for line in logs) == 1


def test_a_template_builds_on_a_built_template(sdk_env: None) -> None:
    _build(Template().from_template("base").run_cmd("echo parent > /home/user/p"), "build-parent")

    _build(Template().from_template("build-parent").run_cmd("cat p > /home/user/c"), "build-child")

    with sandbox_of("build-child") as sandbox:
        assert sandbox.files.read("/home/user/c") == "parent\n"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (Template().from_template("base").pip_install("six"), "needs sudo/root"),
        (Template().from_template("base").apt_install("vim"), "needs sudo/root"),
        (Template().from_template("base").set_user("root"), "needs sudo/root"),
        (Template().from_image("ubuntu:24.04").run_cmd("true"), "e2bdev/base"),
        (Template().from_template("no-such-template").run_cmd("true"), "no such template"),
    ],
    ids=["pip-global", "apt", "user-root", "other-image", "unknown-parent"],
)
def test_what_cannot_be_built_here_fails_and_says_why(
    sdk_env: None, template: TemplateClass, expected: str
) -> None:
    with pytest.raises(BuildException, match=expected):
        Template.build(template, "build-refused")


def test_start_and_ready_commands(sdk_env: None, api: httpx.Client) -> None:
    template = (
        Template()
        .from_template("base")
        .set_start_cmd(
            "echo up > /tmp/started; echo start says hi; sleep 600", wait_for_file("/tmp/started")
        )
    )
    _build(template, "build-start")

    with sandbox_of("build-start") as sandbox:
        assert sandbox.files.read("/tmp/started") == "up\n"  # ready before create answered
        messages = [line["message"] for line in _logs(api, sandbox.sandbox_id)]
    assert "the template's ready command succeeded" in messages
    assert "start command: start says hi" in messages


def _logs(api: httpx.Client, sandbox_id: str) -> list[dict[str, str]]:
    logs: list[dict[str, str]] = api.get(f"/v2/sandboxes/{sandbox_id}/logs").json()["logs"]
    return logs


def test_delete_removes_the_layers(
    sdk_env: None, api: httpx.Client, sandboxd: RunningSandboxd
) -> None:
    layers = sandboxd.data_dir / "templates" / "layers"
    before = set(layers.glob("*.tar"))
    info, _ = _build(
        Template().from_template("base").run_cmd("echo x > /home/user/x"), "build-delete"
    )
    made = set(layers.glob("*.tar")) - before
    assert made

    assert api.delete(f"/templates/{info.template_id}").status_code == 204

    assert not any(path.exists() for path in made)
    with pytest.raises(Exception, match="not found"):
        Sandbox.create("build-delete")


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


def test_a_user_level_pip_install_from_pypi(sdk_env: None, context: Path) -> None:
    if not _pypi_reachable():
        pytest.skip("pypi.org is not reachable from this machine")
    # tomli_w: small, pure Python, no dependencies, and not in the host's Debian userland
    # (which the box shares), so only the build's install can make it importable.
    template = (
        Template(file_context_path=str(context))
        .from_template("base")
        .pip_install("tomli_w==1.0.0", g=False)
        .copy("hello.txt", "/home/user/")
    )

    _build(template, "build-pip")

    with sandbox_of("build-pip") as sandbox:
        where = "import tomli_w; print(tomli_w.__file__); print(tomli_w.dumps({'a': 1}))"
        result = sandbox.commands.run(f'python3 -c "{where}"')
        assert result.stdout.startswith("/home/user/.local/lib/python3")
        assert "a = 1" in result.stdout
        assert sandbox.files.read("/home/user/hello.txt") == "hello from the build context\n"


def test_a_step_past_the_build_s_memory_fails_the_build(sdk_env: None) -> None:
    template = Template().from_template("base").run_cmd("python3 -c 'b = bytearray(1 << 30)'")

    with pytest.raises(BuildException, match="step 1"):
        Template.build(template, "build-oom", memory_mb=128)


def test_build_logs_by_time_direction_and_level(sdk_env: None, api: httpx.Client) -> None:
    template = Template().from_template("base").run_cmd("echo one; echo two; exit 1")
    with pytest.raises(BuildException):
        Template.build(template, "build-logs")
    template_id = api.get("/templates/aliases/build-logs").json()["templateID"]
    build_id = api.get(f"/templates/{template_id}").json()["builds"][0]["buildID"]
    path = f"/templates/{template_id}/builds/{build_id}/logs"

    forward = api.get(path, params={"limit": 100}).json()["logs"]
    backward = api.get(path, params={"direction": "backward", "limit": 2}).json()["logs"]
    errors = api.get(path, params={"level": "error"}).json()["logs"]
    last_ms = _ms(forward[-1]["timestamp"])
    after_last = api.get(path, params={"cursor": last_ms + 1}).json()["logs"]
    bad = api.get(path, params={"direction": "sideways"})

    messages = [entry["message"] for entry in forward]
    assert messages.index("one") < messages.index("two")
    assert [entry["message"] for entry in backward] == messages[::-1][:2]
    assert errors and all(entry["level"] == "error" for entry in errors)
    assert after_last == []
    assert bad.status_code == 400


def _ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def test_copied_symlinks_stay_symlinks(sdk_env: None, tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "real.txt").write_text("real\n")
    (tmp_path / "tree" / "relative").symlink_to("real.txt")
    (tmp_path / "tree" / "absolute").symlink_to("/etc/hostname")
    template = (
        Template(file_context_path=str(tmp_path))
        .from_template("base")
        .copy("tree", "/home/user/tree")
    )

    _build(template, "build-symlinks")

    with sandbox_of("build-symlinks") as sandbox:
        links = sandbox.commands.run("readlink tree/relative tree/absolute").stdout.split()
        assert links == ["real.txt", "/etc/hostname"]
        assert sandbox.files.read("/home/user/tree/relative") == "real\n"


def test_a_layer_that_cannot_be_put_back_fails_the_create_and_leaves_no_box(
    sdk_env: None, api: httpx.Client, sandboxd: RunningSandboxd
) -> None:
    layers = sandboxd.data_dir / "templates" / "layers"
    before = set(layers.glob("*.tar"))
    _build(Template().from_template("base").run_cmd("echo x > x"), "build-broken-layer")
    for path in set(layers.glob("*.tar")) - before:
        path.write_bytes(b"not a tar at all")
    running_before = len(api.get("/v2/sandboxes").json())

    answer = api.post("/sandboxes", json={"templateID": "build-broken-layer", "timeout": 60})

    assert answer.status_code == 503
    assert "could not put the template's layer in the box" in answer.json()["message"]
    assert len(api.get("/v2/sandboxes").json()) == running_before
