// genesy-dynamics on Azure: `azd up` provisions this and deploys the app (azure.yaml).
// Conventions of the azd Flex Consumption templates: subscription scope, one resource group, modules per
// resource family, one user-assigned identity for every connection, no keys anywhere.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds the resource names.')
param environmentName string

@minLength(1)
@description('Azure region (must offer Flex Consumption).')
param location string

@description('Application (client) id of the Entra app registration for the admin surface (set by infra/hooks/preprovision.sh). Empty = no App Service Authentication; the admin routes then rely on their function key alone.')
param authClientId string = ''

@description('True once API_KEY_HASH_SECRET exists in the vault (set by infra/hooks/preprovision.sh): re-provisioning never rotates it.')
param apiKeyHashSecretExists bool = false

@secure()
@description('Do not set: generated at provision time, stored only in Key Vault.')
param apiKeyHashSecret string = newGuid()

@description('E-mail that receives the alerts (optional).')
param alertEmail string = ''

var tags = { 'azd-env-name': environmentName }
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var appName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(appName, 32)}-${take(resourceToken, 7)}'

// What the code reads (shared/platform/settings.py defaults): the queues the triggers declare, the
// delivery count the worker compares with, and the worker's time budget per message.
var writesQueueName = 'genesy-writes'
var campaignQueueName = 'campaign-updates'
var maxDeliveryCount = 10
var writeBudgetSeconds = 240
var apiKeyHashSecretName = 'api-key-hash-secret'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: { name: 'id-${resourceToken}', location: location, tags: tags }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: 'sb-${resourceToken}'
    location: location
    tags: tags
    queueNames: [writesQueueName, campaignQueueName]
    maxDeliveryCount: maxDeliveryCount
    lockDuration: 'PT5M'
    duplicateDetectionWindow: 'PT1H'
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    secretName: apiKeyHashSecretName
    secretValue: apiKeyHashSecret
    secretExists: apiKeyHashSecretExists
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  dependsOn: [roles] // the Key Vault reference and the triggers need their roles before the app starts
  params: {
    planName: 'plan-${resourceToken}'
    appName: appName
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    apiKeyHashSecretUri: keyVault.outputs.secretUri
    writesQueueName: writesQueueName
    campaignQueueName: campaignQueueName
    maxDeliveryCount: maxDeliveryCount
    writeBudgetSeconds: writeBudgetSeconds
    // The console is on only behind Easy Auth (Entra ID sign-in, the admin app role); otherwise it refuses.
    consoleAuth: empty(authClientId) ? 'disabled' : 'easyauth'
  }
}

module auth 'modules/auth.bicep' = if (!empty(authClientId)) {
  name: 'auth'
  scope: rg
  params: { functionAppName: functionApp.outputs.name, clientId: authClientId }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    namePrefix: resourceToken
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    serviceBusNamespaceId: serviceBus.outputs.id
    alertEmail: alertEmail
  }
}

// Outputs land in .azure/<env>/.env: names and ids only, never a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output GENESY_BASE_URL string = 'https://${functionApp.outputs.defaultHostName}/api'
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
// The Dynamics application-user step (Power Platform admin center → Application users → New app user):
// the "App ID" to search for is the managed identity's application (client) id, in this tenant.
output DYNAMICS_APPLICATION_USER_APP_ID string = identity.outputs.clientId
output DYNAMICS_APPLICATION_USER_TENANT_ID string = identity.outputs.tenantId
output AUTH_CLIENT_ID string = authClientId
