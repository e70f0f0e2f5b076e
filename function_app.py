"""The Functions app and its composition root: the app's services are built once (on the first trigger,
from the environment the host set) and handed to one blueprint per module of `functions/`."""

import os

import azure.functions as func

from functions import blueprints
from shared.platform.logs import install_redaction
from shared.platform.settings import load_settings
from shared.services.root import Services, ServicesProvider, lazy_services


def build_app(services: ServicesProvider) -> func.FunctionApp:
    """The FunctionApp with every blueprint, its functions calling the use cases with `services()`."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    for blueprint in blueprints(services):
        app.register_functions(blueprint)
    return app


install_redaction()
if os.environ.get("FUNCTIONS_WORKER_RUNTIME"):
    # Under the Functions host: a missing or malformed setting stops start-up with its name.
    load_settings()
app = build_app(lazy_services(lambda: Services(load_settings())))
