// Alerts an operator can act on, and a small workbook. Telemetry comes from the Functions host's
// Application Insights integration (host.json logging.applicationInsights): every invocation is a
// `requests` row, every app log line a `traces` row. The writes worker logs one metrics line per message
// ("genesy_metrics {json}": workspace_id, written, skipped, failed, retrying, dataverse_requests, throttled,
// queue_lag_ms) — custom metrics as log lines: no extra SDK at cold start, queryable per workspace.
param location string
param tags object = {}
param namePrefix string
param applicationInsightsId string
param serviceBusNamespaceId string
@description('E-mail that receives the alerts; empty = alerts fire without notifying anyone.')
param alertEmail string = ''
@description('Share of failed invocations (HTTP and queue) over 15 minutes that raises an alert.')
param failureRatioThreshold string = '0.05'
@description('Dataverse 429 responses per 5 minutes that count as a throttled interval.')
param throttledPer5Minutes int = 10

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-${namePrefix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('genesy${namePrefix}', 12)
    enabled: true
    emailReceivers: [{ name: 'operator', emailAddress: alertEmail, useCommonAlertSchema: true }]
  }
}

var actions = empty(alertEmail) ? [] : [actionGroup.id]

// Dead letters: the Service Bus metric, not a log query: dead-lettering is done by Service Bus, not logged by the app.
resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${namePrefix}-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'Messages in a dead-letter queue: see docs/operations.md#dead-letters (replay-dead-letters).'
    severity: 2
    enabled: true
    scopes: [serviceBusNamespaceId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'dead-lettered'
          metricName: 'DeadletteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          dimensions: [{ name: 'EntityName', operator: 'Include', values: ['*'] }]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [for id in actions: { actionGroupId: id }]
  }
}

resource failureRatio 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${namePrefix}-failure-ratio'
  location: location
  tags: tags
  properties: {
    description: 'Failed invocations over ${failureRatioThreshold} of all (at least 20) in 15 minutes: see sync-health and the sync-log.'
    severity: 2
    enabled: true
    scopes: [applicationInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'requests | summarize total = count(), failed = countif(success == false) | where total >= 20 | extend ratio = todouble(failed) / total | where ratio > ${failureRatioThreshold}'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actions }
  }
}

resource throttling 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${namePrefix}-dataverse-throttling'
  location: location
  tags: tags
  properties: {
    description: 'Dataverse answered 429 at least ${throttledPer5Minutes} times in each 5 minutes for 15 minutes: lower DATAVERSE_MAX_CONCURRENCY or spread the exports.'
    severity: 3
    enabled: true
    scopes: [applicationInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'traces | where message startswith "genesy_metrics " | extend m = parse_json(substring(message, 15)) | summarize n = sum(toint(m.throttled)) by bin(timestamp, 5m) | where n >= ${throttledPer5Minutes} | summarize throttledIntervals = count()'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'throttledIntervals'
          operator: 'GreaterThanOrEqual'
          threshold: 3
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actions }
  }
}

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      content: { json: '## genesy-dynamics\nInvocations, failures, write outcomes and Dataverse throttling. Records by status per workspace: `GET /api/manage/workspaces/{id}/sync-health`.' }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Invocations and failures by function'
        query: 'requests | summarize invocations = count(), failed = countif(success == false) by name, bin(timestamp, 1h) | order by timestamp desc'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Records written, skipped and failed per workspace (hourly), Dataverse requests and queue lag'
        query: 'traces | where message startswith "genesy_metrics " | extend m = parse_json(substring(message, 15)) | summarize written = sum(toint(m.written)), skipped = sum(toint(m.skipped)), failed = sum(toint(m.failed)), retrying = sum(toint(m.retrying)), dataverseRequests = sum(toint(m.dataverse_requests)), throttled = sum(toint(m.throttled)), p95QueueLagMs = percentile(toint(m.queue_lag_ms), 95) by workspace = tostring(m.workspace_id), bin(timestamp, 1h) | order by timestamp desc'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Dataverse 429s per 5 minutes'
        query: 'traces | where message startswith "genesy_metrics " | extend m = parse_json(substring(message, 15)) | summarize throttled = sum(toint(m.throttled)), requests = sum(toint(m.dataverse_requests)) by bin(timestamp, 5m) | render timechart'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Reconciliation: re-queued and failed records'
        query: 'traces | where message has "stale records re-queued" | project timestamp, message | order by timestamp desc'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, namePrefix, 'genesy-dynamics-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'genesy-dynamics (${namePrefix})'
    category: 'workbook'
    sourceId: applicationInsightsId
    serializedData: string(workbookContent)
  }
}
