"""The E2B REST client: the only module that knows E2B's URLs.

Actions (`e2bapi.actions`) describe the calls; `E2BClient` and `AsyncE2BClient` send them
over an injected httpx client, with retries and one error tree (`e2bapi.errors`):

    client = E2BClient(httpx.Client(base_url=url, headers={"X-API-Key": key}))
    sandboxes = client.run(actions.list_sandboxes(states=["running", "paused"]))
"""

from e2bapi.async_client import AsyncE2BClient
from e2bapi.retry import RetryPolicy
from e2bapi.sync_client import E2BClient

__all__ = ["AsyncE2BClient", "E2BClient", "RetryPolicy"]
