"""A faithful Dataverse Web API sandbox for development and tests (never deployed).

`start_sandbox(SandboxConfig(...))` serves the Web API over HTTPS on loopback with bearer-token checks,
metadata, bulk actions, `$batch`, paging, service-protection limits and fault injection, plus a fake
managed-identity endpoint so azure-identity's real code path issues the tokens.
"""

from devstack.dataverse_sandbox.config import SandboxConfig
from devstack.dataverse_sandbox.limits import RequestRecord, ThrottleEvent
from devstack.dataverse_sandbox.seed import APP_USER_ID, SEED_IDS
from devstack.dataverse_sandbox.server import Sandbox, start_sandbox

__all__ = ["APP_USER_ID", "SEED_IDS", "RequestRecord", "Sandbox", "SandboxConfig", "ThrottleEvent", "start_sandbox"]
