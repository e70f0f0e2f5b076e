// Every role the app's connections need, granted to the one identity they all use. Names are
// guid(scope, principal, role) so re-provisioning is idempotent.
param principalId string
param storageAccountName string
param serviceBusNamespaceName string
param keyVaultName string
param applicationInsightsName string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // AzureWebJobsStorage (leases, deployment package)
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // AzureWebJobsStorage (host queues)
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // TABLES_ENDPOINT
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // ServiceBusConnection (the app sends)
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // ServiceBusConnection (the triggers receive)
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // the API_KEY_HASH_SECRET Key Vault reference
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // APPLICATIONINSIGHTS_AUTHENTICATION_STRING
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: serviceBusNamespaceName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]: {
  scope: storage
  name: guid(storage.id, principalId, role)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource serviceBusRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [
  roles.serviceBusDataSender
  roles.serviceBusDataReceiver
]: {
  scope: serviceBus
  name: guid(serviceBus.id, principalId, role)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource keyVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, principalId, roles.keyVaultSecretsUser)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource monitoringRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: applicationInsights
  name: guid(applicationInsights.id, principalId, roles.monitoringMetricsPublisher)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}
