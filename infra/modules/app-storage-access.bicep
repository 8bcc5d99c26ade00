// What the app's identity may do in the app's own storage account, and what Event Grid's identity
// may do there: the three data roles Durable Functions needs for its task hub on an identity-based
// AzureWebJobsStorage, and writing undeliverable events into the dead-letter container.

@description('Name of the app\'s storage account (in this resource group).')
param accountName string

@description('Principal id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Principal id of the Event Grid system topic\'s identity, which dead-letters; empty for none.')
param deadLetterPrincipalId string = ''

@description('The dead-letter container in this account.')
param deadLetterContainerName string

var durableRoles = [
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner: task hub leases and large messages, host keys and locks, deployment package, claims
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor: task hub control and work-item queues
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor: task hub history and instances; pipelines and runs
]
var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: accountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource durableAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in durableRoles: {
  name: guid(account.id, appPrincipalId, role)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// Scoped to the one container: the topic's identity can write dead letters and nothing else.
resource deadLetterAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deadLetterPrincipalId)) {
  name: guid(deadLetterContainer.id, deadLetterPrincipalId, blobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    principalId: deadLetterPrincipalId
    principalType: 'ServicePrincipal'
  }
}
