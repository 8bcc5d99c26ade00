// Who may read and write the SAS secrets: Key Vault Secrets User for the app (it reads the secret
// a pipeline's keyVaultUri names), Key Vault Secrets Officer for an optional operator who puts the
// SAS tokens there. The vault must be in RBAC mode (keyvault.bicep creates it so).

@description('Name of the vault (in this resource group).')
param vaultName string

@description('Principal id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Object id of a person or group who writes the SAS secrets; empty for none.')
param operatorPrincipalId string = ''

var secretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var secretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource appSecretsAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, secretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource operatorSecretsAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, secretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsOfficer)
    principalId: operatorPrincipalId
  }
}

output uri string = vault.properties.vaultUri
