"""`PUT /sandboxes/{id}/network` (the SDK's `update_network`), and the network fields of a
create body: E2B's `allow_internet_access`, `allowOut` and `denyOut` (docs/E2B-API.md,
"Network rules"). The rules themselves are applied by the isolation (isolation/network.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandboxd.api.parsing import field_of, json_object
from sandboxd.isolation.egress import EgressRuleError, parse_egress
from sandboxd.manager import SandboxManager
from sandboxd.problems import ApiProblem

# Fields of E2B's network config that sandboxd does not apply: refused, never ignored, so a
# user does not believe headers are injected or traffic is tunnelled when it is not.
UNSUPPORTED_FIELDS = ("rules", "egressProxy", "maskRequestHost")


def address_list(network: dict[str, Any], name: str) -> tuple[str, ...]:
    """`network[name]`, a list of strings (checked as addresses by isolation/egress.py);
    400 for any other shape, and for a field sandboxd does not apply."""
    for unsupported in UNSUPPORTED_FIELDS:
        if network.get(unsupported):
            raise ApiProblem(400, f"network '{unsupported}' is not supported by sandboxd")
    entries = field_of(network, name, list, [])
    if not all(isinstance(entry, str) for entry in entries):
        raise ApiProblem(400, f"'{name}' must be a list of strings")
    return tuple(entries)


async def update_network(request: Request) -> Response:
    """Replace a running sandbox's egress rules; omitted fields are cleared, as E2B's spec
    says. 404 unknown, 409 paused or on an isolation level without rules, 400 bad rules."""
    manager: SandboxManager = request.app.state.manager
    sandbox_id = request.path_params["sandbox_id"]
    body = await json_object(request)
    allow_internet = field_of(body, "allow_internet_access", bool)
    allow_out, deny_out = address_list(body, "allowOut"), address_list(body, "denyOut")
    live = manager.get(sandbox_id)
    if live.record.state != "running":
        raise ApiProblem(409, f"sandbox '{sandbox_id}' is not running")
    update = getattr(manager.isolation, "update_egress", None)
    if update is None:
        raise ApiProblem(409, "network rules need full isolation; this sandboxd runs reduced")
    try:
        egress = parse_egress(allow_internet, allow_out, deny_out)
    except EgressRuleError as bad:
        raise ApiProblem(400, str(bad)) from None
    await update(sandbox_id, egress)
    live.record.allow_internet_access = allow_internet
    manager.journal.save(live.record)
    return Response(status_code=204)


ROUTES = [Route("/sandboxes/{sandbox_id}/network", update_network, methods=["PUT"])]
