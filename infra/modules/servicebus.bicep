// Service Bus (Standard: sessions need Standard or Premium) with the app's two session queues.
// Local (SAS) authentication is off: senders and the triggers use the managed identity.
param name string
param location string
param tags object = {}
@description('The queues: genesy-writes (session = workspace) and campaign-updates (session = workspace:contact).')
param queueNames array
@description('Deliveries before dead-lettering; the app reads the same number as SERVICEBUS_MAX_DELIVERY_COUNT.')
param maxDeliveryCount int
@description('Peek-lock duration (at most PT5M); at least the worker\'s WRITE_BUDGET_SECONDS, and the host renews it.')
param lockDuration string
@description('Duplicate detection window: covers Genesy\'s retries of one call (same message id).')
param duplicateDetectionWindow string

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queues 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = [for queueName in queueNames: {
  parent: namespace
  name: queueName
  properties: {
    requiresSession: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    enablePartitioning: false
  }
}]

output name string = namespace.name
output id string = namespace.id
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
