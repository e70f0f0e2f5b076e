#!/bin/sh
# azd postprovision hook (azure.yaml): once the function app's host name is known, let the admin console's
# browser sign-in work — add https://<host>/.auth/login/aad/callback to the app registration's web redirect
# URIs (keeping the ones already there) and allow ID tokens, which App Service Authentication's login flow
# needs. Does nothing when Easy Auth is not deployed (AUTH_CLIENT_ID empty or "none"). Idempotent.
set -eu
client_id="${AUTH_CLIENT_ID:-}"
base_url="${GENESY_BASE_URL:-}"
if [ -z "$client_id" ] || [ "$client_id" = "none" ]; then
  echo "postprovision: no App Service Authentication deployed; nothing to do for the console's sign-in"
  exit 0
fi
if [ -z "$base_url" ]; then
  echo "postprovision: GENESY_BASE_URL is not in the azd environment; run azd provision first" >&2
  exit 1
fi
host="${base_url#https://}"
host="${host%%/*}"
callback="https://${host}/.auth/login/aad/callback"
existing="$(az ad app show --id "$client_id" --query "web.redirectUris" -o tsv 2>/dev/null || true)"
case "
$existing
" in
  *"
$callback
"*) uris="$existing" ;;
  *) uris="$existing
$callback" ;;
esac
# One URI per argument; an empty line (no URI yet) is dropped.
set --
for uri in $uris; do
  [ -n "$uri" ] && set -- "$@" "$uri"
done
az ad app update --id "$client_id" --web-redirect-uris "$@" --enable-id-token-issuance true
echo "postprovision: console sign-in redirect URI ${callback} set on app registration ${client_id}"
echo "postprovision: admins sign in at https://${host}/.auth/login/aad?post_login_redirect_uri=/api/console"
