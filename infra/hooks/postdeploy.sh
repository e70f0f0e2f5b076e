#!/bin/sh
# azd postdeploy hook (azure.yaml): smoke-test the deployed app and print what to paste into Genesy.
set -eu
python="./.venv/bin/python"
[ -x "$python" ] || python="python3"
exec "$python" -m devstack.smoke
