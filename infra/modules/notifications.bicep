// Optional: an Event Grid topic (CloudEvents 1.0) for the notifications of syncs and promotions.
// Local (key) authentication is off; the app publishes with its identity as EventGrid Data Sender.

@description('Name of the topic.')
param name string

@description('Azure region.')
param location string

@description('Tags for the topic.')
param tags object = {}

@description('Principal id of the app\'s user-assigned identity.')
param appPrincipalId string

var dataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  // checkov:skip=CKV_AZURE_193: the app runs on Flex Consumption without a virtual network, so it publishes over the public endpoint; local (key) auth is disabled and publishing needs EventGrid Data Sender.
  name: name
  location: location
  tags: tags
  // An identity of its own, for delivering to destinations that authenticate Event Grid.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource appSendAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, appPrincipalId, dataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = topic.properties.endpoint
