"""The Functions app: creates the FunctionApp and registers one blueprint per module of `functions/`."""

import os

import azure.functions as func

from functions import BLUEPRINTS
from shared.platform.logs import install_redaction
from shared.platform.settings import get_settings

install_redaction()
if os.environ.get("FUNCTIONS_WORKER_RUNTIME"):
    # Under the Functions host: a missing or malformed setting stops start-up with its name.
    get_settings()
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
