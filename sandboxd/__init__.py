"""sandboxd: a local runtime that speaks the E2B API and runs real, isolated sandboxes.

It is a server of its own and imports nothing from sandscope's packages. The parts:

    config        settings, read once from SANDBOXD_* environment variables
    auth          the API key: made at first start, kept 0600, compared in constant time
    store         sandboxd's own SQLite file: sandboxes, samples, logs, events (7 days)
    isolation/    how a sandbox is made: cgroups + loop disk + bubblewrap + seccomp as root
                  ("full"), user namespaces + rlimits + SIGSTOP elsewhere ("reduced")
    agent/        the agent that runs inside each sandbox (stdlib only) and its host client
    manager       the sandboxes' lifecycle: create, pause, resume, timeouts, OOM, kill
    sampler       every running sandbox's usage every 5 s, team metrics
    api/          the control-plane HTTP API (E2B's routes, codes and error bodies)
    envd/         the in-sandbox API the SDK talks to (Connect protocol, JSON codec)
"""
