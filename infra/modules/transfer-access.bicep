// A transfer account (new or existing) as the app uses it: the `transfer` container, Storage Blob
// Data Contributor for the app (export writes archives, copy-blob reads and writes them, import reads
// them and may delete them), and on the import account Storage Queue Data Contributor, because the
// blob trigger keeps its poison queue in the account its connection names. An operator principal
// may get Blob Data Contributor too, to upload and inspect archives without keys.

@description('Name of the transfer account (in this resource group).')
param accountName string

@description('The container archives are written to and read from.')
param containerName string = 'transfer'

@description('Principal id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('True for the account the import blob trigger watches (FERRY_IMPORT_STORAGE).')
param importAccount bool = false

@description('Object id of a person or group who uploads and inspects archives; empty for none.')
param operatorPrincipalId string = ''

var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var queueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: accountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}

resource appBlobAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, blobDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (importAccount) {
  name: guid(account.id, appPrincipalId, queueDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', queueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource operatorBlobAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(account.id, operatorPrincipalId, blobDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    principalId: operatorPrincipalId
  }
}

output id string = account.id
output containerName string = container.name
