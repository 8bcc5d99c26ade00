// The Event Grid system topic on the import account: Blob Storage publishes BlobCreated here, and
// ../eventgrid.bicep (deployed by the postdeploy hook, once the blob extension's key exists) subscribes
// the import trigger to it. The topic's system-assigned identity writes dead letters
// (app-storage-access.bicep grants it the dead-letter container only). An account has at most one
// system topic: for an existing import account that already has one, see infra/README.md.

@description('Name of the system topic.')
param name string

@description('Azure region of the import account.')
param location string

@description('Tags for the topic.')
param tags object = {}

@description('Name of the import account (in this resource group).')
param accountName string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: accountName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = topic.name
output principalId string = topic.identity.principalId
