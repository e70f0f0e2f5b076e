// Key Vault (RBAC) holding API_KEY_HASH_SECRET. The secret's value arrives as a secure parameter whose
// default is newGuid() (main.bicep): generated at provision time, never in a file, never in an output.
param name string
param location string
param tags object = {}
param secretName string
@secure()
param secretValue string
@description('False only on the first provision: re-provisioning must not rotate the secret (that would invalidate every API key).')
param secretExists bool

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!secretExists) {
  parent: vault
  name: secretName
  properties: {
    value: secretValue
    contentType: 'HMAC key of the API-key hashes; rotating it invalidates every issued key'
  }
}

output name string = vault.name
// The secret's URI without a version (a Key Vault reference then follows the latest version).
output secretUri string = '${vault.properties.vaultUri}secrets/${secretName}'
