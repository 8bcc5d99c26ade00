// One existing Azure Container Registry as the app uses it. AcrPush (which includes pull) where
// Ferry writes, AcrPull where it only reads; Reader, because an importImage whose source is given
// as source.resourceId makes Ferry GET the registry through ARM to learn its login server; and, on
// the registry that importImage is handed to (FERRY_ACR_IMPORT_HANDOFF), a custom role holding only
// Microsoft.ContainerRegistry/registries/importImage/action. Contributor would allow the import
// too, but also deleting the registry, changing its network rules and reading its admin password.

@description('Name of the registry (in this resource group).')
param registryName string

@description('Principal id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('True where Ferry writes (AcrPush); false where it only reads (AcrPull).')
param push bool = false

@description('True for the registry ACR\'s own importImage is handed to.')
param importImage bool = false

var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'
var acrPush = '8311e382-0749-4cb8-b61a-304f252e45ec'
var reader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
var dataRole = push ? acrPush : acrPull

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource dataAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, appPrincipalId, dataRole)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataRole)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource readAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, appPrincipalId, reader)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', reader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Custom role names are unique per tenant, so the name carries the registry's id. Custom roles are
// assignable at resource group scope at the finest; the assignment below is on the registry alone.
resource importer 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (importImage) {
  name: guid(registry.id, 'ferry-acr-import-image')
  properties: {
    roleName: 'Ferry ACR importImage ${uniqueString(registry.id)}'
    description: 'Start ACR importImage into ${registryName} (Ferry\'s importImage handoff); nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.ContainerRegistry/registries/importImage/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource importAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (importImage) {
  name: guid(registry.id, appPrincipalId, 'ferry-acr-import-image')
  scope: registry
  properties: {
    roleDefinitionId: importer.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = registry.id
output loginServer string = registry.properties.loginServer
