#!/bin/sh
# azd preprovision hook (azure.yaml). Two things Bicep cannot do:
#  1. create the Entra app registration that App Service Authentication validates tokens for (once per
#     environment; its client id goes to AUTH_CLIENT_ID). Needs the Azure CLI signed in (`az login`) as a
#     user allowed to register applications. Set AUTH_CLIENT_ID yourself (`azd env set AUTH_CLIENT_ID <id>`)
#     to use an existing registration, or `azd env set AUTH_CLIENT_ID none` to deploy without Easy Auth.
#  2. tell main.bicep whether API_KEY_HASH_SECRET already exists, so re-provisioning never rotates it
#     (a control-plane read of the secret's metadata: no secret value is read).
set -eu

if ! command -v az >/dev/null 2>&1; then
  echo "preprovision: the Azure CLI (az) is required (https://aka.ms/azure-cli)" >&2
  exit 1
fi

AZURE_CLI_APP_ID="04b07795-8ddb-461a-bbee-02f9e1bf7b46" # first-party Azure CLI client, pre-authorised below

auth_client_id="${AUTH_CLIENT_ID:-}"
if [ "$auth_client_id" = "none" ]; then
  azd env set AUTH_CLIENT_ID ""
elif [ -z "$auth_client_id" ]; then
  name="genesy-dynamics-admin-${AZURE_ENV_NAME}"
  echo "preprovision: creating the Entra app registration '$name' for the admin surface"
  app_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --query appId -o tsv)
  object_id=$(az ad app show --id "$app_id" --query id -o tsv)
  scope_id=$(python3 -c 'import uuid; print(uuid.uuid4())')
  role_id=$(python3 -c 'import uuid; print(uuid.uuid4())')
  # api://<appId>, v2 access tokens (issuer .../v2.0, as authsettingsV2 expects), a user_impersonation
  # scope, and the Azure CLI pre-authorised for it so `az account get-access-token` works for admins.
  az rest --method PATCH --url "https://graph.microsoft.com/v1.0/applications/$object_id" \
    --headers "Content-Type=application/json" --body "{
      \"identifierUris\": [\"api://$app_id\"],
      \"appRoles\": [{\"id\": \"$role_id\", \"value\": \"GenesyDynamics.Admin\", \"isEnabled\": true,
        \"allowedMemberTypes\": [\"User\"], \"displayName\": \"genesy-dynamics admin\",
        \"description\": \"Uses the admin console (CONSOLE_ADMIN_ROLE).\"}],
      \"api\": {
        \"requestedAccessTokenVersion\": 2,
        \"oauth2PermissionScopes\": [{\"id\": \"$scope_id\", \"value\": \"user_impersonation\", \"type\": \"User\",
          \"isEnabled\": true, \"adminConsentDisplayName\": \"Administer genesy-dynamics\",
          \"adminConsentDescription\": \"Call the genesy-dynamics admin API.\",
          \"userConsentDisplayName\": \"Administer genesy-dynamics\",
          \"userConsentDescription\": \"Call the genesy-dynamics admin API.\"}]
      }
    }"
  az rest --method PATCH --url "https://graph.microsoft.com/v1.0/applications/$object_id" \
    --headers "Content-Type=application/json" --body "{
      \"api\": {\"preAuthorizedApplications\": [{\"appId\": \"$AZURE_CLI_APP_ID\", \"delegatedPermissionIds\": [\"$scope_id\"]}]}
    }"
  # Only users assigned to the app get a token: assign the one running azd the admin role the console
  # requires (add more in Entra ID → Enterprise applications → <name> → Users and groups).
  sp_id=$(az ad sp create --id "$app_id" --query id -o tsv)
  az ad sp update --id "$sp_id" --set appRoleAssignmentRequired=true
  user_id=$(az ad signed-in-user show --query id -o tsv)
  az rest --method POST --url "https://graph.microsoft.com/v1.0/servicePrincipals/$sp_id/appRoleAssignedTo" \
    --headers "Content-Type=application/json" --body "{
      \"principalId\": \"$user_id\", \"resourceId\": \"$sp_id\", \"appRoleId\": \"$role_id\"
    }" >/dev/null
  azd env set AUTH_CLIENT_ID "$app_id"
  echo "preprovision: AUTH_CLIENT_ID=$app_id"
fi

exists=false
if [ -n "${AZURE_KEY_VAULT_NAME:-}" ] && [ -n "${AZURE_RESOURCE_GROUP:-}" ]; then
  if az resource show --resource-group "$AZURE_RESOURCE_GROUP" --namespace Microsoft.KeyVault \
      --parent "vaults/$AZURE_KEY_VAULT_NAME" --resource-type secrets --name api-key-hash-secret \
      --query id -o tsv >/dev/null 2>&1; then
    exists=true
  fi
fi
azd env set API_KEY_HASH_SECRET_EXISTS "$exists"
