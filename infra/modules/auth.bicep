// App Service Authentication (Easy Auth) with Microsoft Entra ID in front of the admin surface.
// Every request needs an Entra token (401 without one, no browser redirect: the admin surface is an API)
// except the paths below: Genesy's Custom CRM routes and its webhooks authenticate with the workspace's own
// API key / webhook secret, which Genesy sends and Entra cannot. /api/openapi.json stays public: the app
// serves it anonymously and it describes the contract only, no data. Admin routes also keep their function
// key (AuthLevel.FUNCTION), so they need both. The admin console (/api/console) is anonymous at the host and
// stays behind Entra ID here: the app reads the principal Easy Auth injects and requires the admin app role
// (CONSOLE_AUTH=easyauth). Admins sign in at /.auth/login/aad?post_login_redirect_uri=/api/console.
// tests/infra/test_consistency.py checks this list against the routes functions/*.py register.
param functionAppName string
@description('Application (client) id of the Entra app registration created by infra/hooks/preprovision.sh.')
param clientId string
param tenantId string = subscription().tenantId

var excludedPaths = [
  '/api/health'
  '/api/companies'
  '/api/companies/sync'
  '/api/companies/batch'
  '/api/contacts'
  '/api/contacts/sync'
  '/api/contacts/batch'
  '/api/associations'
  '/api/users'
  '/api/tasks'
  '/api/tasks/batch'
  '/api/tasks/*'
  '/api/activities'
  '/api/activities/*'
  '/api/campaign-events'
  '/api/webhooks/*'
  '/api/openapi.json'
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: excludedPaths
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: 'https://login.microsoftonline.com/${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            clientId
            'api://${clientId}'
          ]
        }
      }
    }
    login: { tokenStore: { enabled: false } }
    httpSettings: { requireHttps: true }
  }
}
