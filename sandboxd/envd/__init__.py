"""The in-sandbox API the E2B SDK talks to (envd, port 49983), served for every sandbox
by one Starlette app: Connect RPCs (JSON codec) for processes and files, `/files`,
`/health`. Each sandbox is reached through its agent (`sandboxd.agent.AgentClient`)."""

from sandboxd.envd.app import create_envd_app
from sandboxd.envd.target import EnvdTarget, Resolver

__all__ = ["EnvdTarget", "Resolver", "create_envd_app"]
