// Flex Consumption plan + the function app (Python 3.11). Every connection is identity-based and uses the
// one user-assigned identity; the only secret (API_KEY_HASH_SECRET) is a Key Vault reference.
param planName string
param appName string
param location string
param tags object = {}
param identityId string
param identityClientId string
param storageAccountName string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param serviceBusFullyQualifiedNamespace string
param applicationInsightsConnectionString string
param apiKeyHashSecretUri string
param writesQueueName string
param campaignQueueName string
param maxDeliveryCount int
param writeBudgetSeconds int
@description('Who may open the admin console: easyauth when App Service Authentication is in front, else disabled.')
@allowed(['disabled', 'easyauth'])
param consoleAuth string = 'disabled'
param maximumInstanceCount int = 40
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: { minTlsVersion: '1.2', ftpsState: 'Disabled' }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: maximumInstanceCount, instanceMemoryMB: instanceMemoryMB }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

// One line per setting (tests/infra/test_consistency.py reads them). Flex Consumption sets the runtime
// from functionAppConfig.runtime: FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION are not app settings.
var appSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  TABLES_ENDPOINT: storageTableEndpoint
  TABLE_PREFIX: 'gd'
  QUEUE_BACKEND: 'servicebus'
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  WRITES_QUEUE_NAME: writesQueueName
  CAMPAIGN_QUEUE_NAME: campaignQueueName
  SERVICEBUS_MAX_DELIVERY_COUNT: string(maxDeliveryCount)
  RECONCILE_SCHEDULE: '0 */15 * * * *'
  AZURE_CLIENT_ID: identityClientId
  API_KEY_HASH_SECRET: '@Microsoft.KeyVault(SecretUri=${apiKeyHashSecretUri})'
  DATAVERSE_MAX_CONCURRENCY: '8'
  DATAVERSE_TIMEOUT_SECONDS: '30'
  MATCH_TIMEOUT_SECONDS: '5'
  WRITE_BUDGET_SECONDS: string(writeBudgetSeconds)
  WRITE_PARALLEL_MESSAGES: '8'
  MALLOC_ARENA_MAX: '2'
  MAPPING_CACHE_SECONDS: '5'
  USERS_CACHE_SECONDS: '300'
  KEY_GRACE_SECONDS: '86400'
  KEY_CACHE_SECONDS: '30'
  WEBHOOK_ENGAGEMENT_EVENTS: 'POST_LIKED,PROFILE_VISITED'
  CONSOLE_AUTH: consoleAuth
  CONSOLE_ADMIN_ROLE: 'GenesyDynamics.Admin'
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
