// A new Key Vault for the SAS tokens of SasToken pipelines (ACR Transfer's keyVaultUri), in RBAC
// mode: access is granted by role assignments (keyvault-access.bicep), never by access policies.

@description('Name of the vault (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the vault.')
param tags object = {}

@description('Days a deleted vault or secret can be recovered.')
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the app runs on Flex Consumption without a virtual network: its outbound addresses are not fixed and it is not an Azure trusted service, so a firewall rule cannot admit it. Access is RBAC only (Key Vault Secrets User for the app).
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: public network access stays on, reads need a role assignment.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
