// The app's one user-assigned managed identity. Every data-plane connection of the app names its
// client id (X__clientId), every role assignment of the app names its principal id, and Application
// Insights authenticates with it, so nothing the app uses holds a key.

@description('Name of the user-assigned identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
