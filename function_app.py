"""The Functions app: creates the FunctionApp and registers one blueprint per module of `functions/`."""

import azure.functions as func

from functions import BLUEPRINTS
from shared.logs import install_redaction

install_redaction()
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
