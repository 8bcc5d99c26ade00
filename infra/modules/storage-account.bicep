// A new StorageV2 account on Entra ID only: shared keys, SAS signed with keys, anonymous blob
// access and cross-tenant replication are off, TLS 1.2 and HTTPS only. Used for the app's own
// account and for new transfer accounts, so the shape is written once.

@description('Name of the storage account (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the account.')
param tags object = {}

@description('Replication. Transfer archives can be written again, so locally redundant storage is enough by default.')
param skuName string = 'Standard_LRS'

@description('Blob containers to create (private).')
param containers array = []

@description('Days a deleted blob or container can be restored.')
param deleteRetentionDays int = 7

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: the app runs on Flex Consumption without a virtual network, and Event Grid and operators reach the account too; no network rule can name them. Access is Entra-only (allowSharedKeyAccess false). Add a virtual network and private endpoints to deny by default.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: the public endpoint stays on, but answers only Entra tokens with a role on the account.
  // checkov:skip=CKV_AZURE_206: Replication is the skuName parameter. Transfer archives can be exported again and the app's account holds only re-creatable state, so LRS is the default; choose Standard_ZRS or Standard_GZRS where the region offers it.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in containers: {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
