// Ferry on Azure: the Functions app on Flex Consumption with one user-assigned identity, its own
// keyless storage account, transfer accounts, a Key Vault for SAS tokens, access to the registries,
// the Event Grid system topic the import trigger listens to, and Application Insights on Entra auth.
//
// `azd up` deploys this file (subscription scope: it creates the resource group), then the code, then
// runs hooks/postdeploy.sh, which subscribes the import trigger to the system topic (eventgrid.bicep):
// that subscription needs the blob extension's system key, which exists only once the code runs.
//
// Every app setting the code reads (ferry/settings.py) is set in `appSettings` below; the storage
// connections use the identity form (X__blobServiceUri, X__credential, X__clientId), never a key.
// tests/infra checks both against the code. README.md beside this file explains every parameter.

targetScope = 'subscription'

// -- the environment ------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; resource names and the azd-env-name tag derive from it.')
param environmentName string

@minLength(1)
@description('Region of every new resource.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or use (default rg-ENVIRONMENT).')
param resourceGroupName string = ''

@description('Object id of the person or group who operates Ferry: Key Vault Secrets Officer (to store SAS tokens) and Storage Blob Data Contributor on the transfer accounts (keys are off). Empty for none.')
param operatorPrincipalId string = ''

// -- registries (ACR Transfer: the registry of the pipelines) -------------------------------------

@description('Name of the Azure Container Registry Ferry serves (FERRY_REGISTRY): where imports land and exports read from. The app gets AcrPush on it.')
param registryName string

@description('Resource group of that registry (default: this deployment\'s).')
param registryResourceGroupName string = ''

@description('Other registries Ferry reads from or writes to, each { "name": ..., "resourceGroupName": ..., "push": true|false }: push true gives AcrPush, false AcrPull.')
param additionalRegistries array = []

@description('Hand importImage to ACR\'s own importImage on the registry above (FERRY_ACR_IMPORT_HANDOFF); grants the custom importImage role.')
param acrImportHandoff bool = false

@description('Regions of the registry\'s dedicated data endpoints, comma-separated (Premium; e.g. "westeurope"). ACR answers a blob download with a redirect to REGISTRY.REGION.data.azurecr.io when they are on, so these hosts join FERRY_ALLOWED_HOSTS.')
param registryDataEndpointRegions string = ''

@description('More hosts the app may reach, comma-separated (FERRY_ALLOWED_HOSTS): registries outside Azure and their token and blob hosts, or *.blob.core.windows.net for pulls from a registry without dedicated data endpoints. Empty by default: exactly the accounts, vault, registries and ARM of this deployment.')
param additionalAllowedHosts string = ''

// -- transfer storage (ACR Transfer: the export target and import source accounts) ----------------

@description('The source (export) account: new, an existing one named below, or none (an environment that only imports).')
@allowed([
  'new'
  'existing'
  'none'
])
param sourceStorageMode string = 'new'

@description('Name of the source account (new: default generated; existing: required).')
param sourceStorageAccountName string = ''

@description('Resource group of an existing source account (default: this deployment\'s).')
param sourceStorageResourceGroupName string = ''

@description('The target (import) account the import trigger watches: new, or an existing one named below.')
@allowed([
  'new'
  'existing'
])
param targetStorageMode string = 'new'

@description('Name of the target account (new: default generated; existing: required).')
param targetStorageAccountName string = ''

@description('Resource group of an existing target account (default: this deployment\'s).')
param targetStorageResourceGroupName string = ''

@description('Region of an existing target account, where its Event Grid system topic must be (default: location).')
param targetStorageLocation string = ''

@description('The container archives go through, in both accounts; the import trigger watches it in the target account.')
param transferContainerName string = 'transfer'

// -- Key Vault (ACR Transfer: keyVaultName holding the SAS token secrets) -------------------------

@description('The Key Vault of SasToken pipelines: new, or an existing one (in RBAC mode) named below.')
@allowed([
  'new'
  'existing'
])
param keyVaultMode string = 'new'

@description('Name of the vault (new: default generated; existing: required).')
param keyVaultName string = ''

@description('Resource group of an existing vault (default: this deployment\'s).')
param keyVaultResourceGroupName string = ''

// -- the app --------------------------------------------------------------------------------------

@description('Create an Event Grid topic for notifications (syncs, promotions); the app gets EventGrid Data Sender on it.')
param deployNotificationsTopic bool = false

@description('NCRONTAB schedule (six fields) of the claims sweep (FERRY_CLAIMS_SWEEP_SCHEDULE).')
param claimsSweepSchedule string = '0 17 * * * *'

@description('Claims older than this many hours are swept (FERRY_CLAIMS_MAX_AGE_HOURS).')
@minValue(1)
param claimsMaxAgeHours int = 48

@description('NCRONTAB schedule (six fields) of the timer that starts due syncs (FERRY_SYNC_TICK).')
param syncTick string = '0 */5 * * * *'

@description('Attempts of one registry operation before it gives up (FERRY_RETRY_ATTEMPTS).')
@minValue(1)
param retryAttempts int = 5

@description('Seconds one registry operation may retry for (FERRY_RETRY_SECONDS).')
@minValue(1)
param retrySeconds int = 120

@description('Most artifacts one export may name (FERRY_MAX_ARTIFACTS).')
@minValue(1)
param maxArtifacts int = 10000

@description('Memory of each Flex Consumption instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

// -- names ----------------------------------------------------------------------------------------
// Comparisons inside a larger expression are parenthesized: the Bicep parser tests/infra reads the
// template with (pycep-parser) has no operator precedence.

var token = toLower(uniqueString(subscription().id, environmentName, location))
var rgName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var tags = {
  'azd-env-name': environmentName
}

var appName = 'func-ferry-${token}'
var appStorageName = 'stferry${token}'
var deploymentContainerName = 'app-package'
var claimsContainerName = 'ferry-claims'
var deadLetterContainerName = 'eventgrid-deadletter'

var sourceName = empty(sourceStorageAccountName) ? 'stferrysrc${token}' : sourceStorageAccountName
var sourceRg = ((sourceStorageMode == 'existing') && !empty(sourceStorageResourceGroupName)) ? sourceStorageResourceGroupName : rgName
var targetName = empty(targetStorageAccountName) ? 'stferrytgt${token}' : targetStorageAccountName
var targetRg = ((targetStorageMode == 'existing') && !empty(targetStorageResourceGroupName)) ? targetStorageResourceGroupName : rgName
var targetLocation = ((targetStorageMode == 'existing') && !empty(targetStorageLocation)) ? targetStorageLocation : location
var vaultName = empty(keyVaultName) ? 'kv-ferry-${token}' : keyVaultName
var vaultRg = ((keyVaultMode == 'existing') && !empty(keyVaultResourceGroupName)) ? keyVaultResourceGroupName : rgName
var registryRg = empty(registryResourceGroupName) ? rgName : registryResourceGroupName

// -- hosts, computed from names so the allow-list is known before anything is deployed ------------

var storageSuffix = environment().suffixes.storage
var appBlobUri = 'https://${appStorageName}.blob.${storageSuffix}'
var targetBlobUri = 'https://${targetName}.blob.${storageSuffix}'
var sourceBlobHosts = (sourceStorageMode == 'none') ? [] : [
  '${sourceName}.blob.${storageSuffix}'
]
var vaultHost = '${vaultName}${environment().suffixes.keyvaultDns}'
var armHost = replace(replace(environment().resourceManager, 'https://', ''), '/', '')
var registries = concat([
  {
    name: registryName
    resourceGroupName: registryRg
    push: true
  }
], additionalRegistries)
var registryHosts = [for registry in registries: '${toLower(registry.name)}${environment().suffixes.acrLoginServer}']
var dataEndpointRegions = empty(registryDataEndpointRegions) ? [] : split(registryDataEndpointRegions, ',')
var dataEndpointHosts = [for region in dataEndpointRegions: '${toLower(registryName)}.${toLower(trim(region))}.data${environment().suffixes.acrLoginServer}']
var extraHosts = empty(additionalAllowedHosts) ? [] : split(additionalAllowedHosts, ',')
var storageHosts = [
  '${appStorageName}.blob.${storageSuffix}'
  '${targetName}.blob.${storageSuffix}'
]
var allowedHosts = union(storageHosts, sourceBlobHosts, [vaultHost], registryHosts, dataEndpointHosts, [armHost], extraHosts)
var registryResourceId = '/subscriptions/${subscription().subscriptionId}/resourceGroups/${registryRg}/providers/Microsoft.ContainerRegistry/registries/${registryName}'

// -- the app settings: every name ferry/settings.py reads (less the CLI's), and the host's --------

var appSettings = {
  // The host's storage: task hub, host keys, pipelines and runs. Identity form, no key.
  AzureWebJobsStorage__blobServiceUri: appBlobUri
  AzureWebJobsStorage__queueServiceUri: 'https://${appStorageName}.queue.${storageSuffix}'
  AzureWebJobsStorage__tableServiceUri: 'https://${appStorageName}.table.${storageSuffix}'
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  // Claims (credentials and plans at rest) in the app's account, container ferry-claims.
  FERRY_CLAIMS_CONNECTION__blobServiceUri: appBlobUri
  FERRY_CLAIMS_CONNECTION__credential: 'managedidentity'
  FERRY_CLAIMS_CONNECTION__clientId: identity.outputs.clientId
  FERRY_CLAIMS_MAX_AGE_HOURS: string(claimsMaxAgeHours)
  FERRY_CLAIMS_SWEEP_SCHEDULE: claimsSweepSchedule
  // Registries and egress.
  FERRY_REGISTRY: registryHosts[0]
  FERRY_ALLOWED_HOSTS: join(allowedHosts, ',')
  FERRY_INSECURE_REGISTRIES: ''
  FERRY_MAX_ARTIFACTS: string(maxArtifacts)
  FERRY_RETRY_ATTEMPTS: string(retryAttempts)
  FERRY_RETRY_SECONDS: string(retrySeconds)
  // Scheduled syncs: the timer that starts each sync whose own schedule is due.
  FERRY_SYNC_TICK: syncTick
  // Transfer storage: pipelines use ManagedIdentity or SasToken (Key Vault); no connection strings.
  FERRY_STORAGE_CONNECTION_STRINGS: '[]'
  FERRY_KEYVAULT_CA_BUNDLE: ''
  // The import trigger: the target account's transfer container, through Event Grid. The queue URI
  // is for the trigger's poison queue, kept in the account the connection names.
  FERRY_IMPORT_STORAGE__blobServiceUri: targetBlobUri
  FERRY_IMPORT_STORAGE__queueServiceUri: 'https://${targetName}.queue.${storageSuffix}'
  FERRY_IMPORT_STORAGE__credential: 'managedidentity'
  FERRY_IMPORT_STORAGE__clientId: identity.outputs.clientId
  FERRY_IMPORT_BLOB_PATH: '${transferContainerName}/{name}'
  FERRY_IMPORT_TRIGGER_SOURCE: 'EventGrid'
  // ARM and the importImage handoff.
  FERRY_ARM_ENDPOINT: 'https://${armHost}'
  FERRY_ARM_CA_BUNDLE: ''
  FERRY_TARGET_ACR_RESOURCE_ID: acrImportHandoff ? registryResourceId : ''
  FERRY_ACR_IMPORT_HANDOFF: acrImportHandoff ? 'true' : 'false'
}

// -- resources ------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rgName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-ferry-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-ferry-${token}'
    applicationInsightsName: 'appi-ferry-${token}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module appStorage 'modules/storage-account.bicep' = {
  name: 'app-storage'
  scope: rg
  params: {
    name: appStorageName
    location: location
    tags: tags
    containers: [
      deploymentContainerName
      claimsContainerName
      deadLetterContainerName
    ]
  }
}

module sourceStorage 'modules/storage-account.bicep' = if (sourceStorageMode == 'new') {
  name: 'source-storage'
  scope: rg
  params: {
    name: sourceName
    location: location
    tags: tags
  }
}

module sourceAccess 'modules/transfer-access.bicep' = if (sourceStorageMode != 'none') {
  name: 'source-access'
  scope: resourceGroup(sourceRg)
  params: {
    accountName: sourceName
    containerName: transferContainerName
    appPrincipalId: identity.outputs.principalId
    operatorPrincipalId: operatorPrincipalId
  }
  dependsOn: [
    rg
    sourceStorage
  ]
}

module targetStorage 'modules/storage-account.bicep' = if (targetStorageMode == 'new') {
  name: 'target-storage'
  scope: rg
  params: {
    name: targetName
    location: location
    tags: tags
  }
}

module targetAccess 'modules/transfer-access.bicep' = {
  name: 'target-access'
  scope: resourceGroup(targetRg)
  params: {
    accountName: targetName
    containerName: transferContainerName
    appPrincipalId: identity.outputs.principalId
    importAccount: true
    operatorPrincipalId: operatorPrincipalId
  }
  dependsOn: [
    rg
    targetStorage
  ]
}

module importEvents 'modules/import-events.bicep' = {
  name: 'import-events'
  scope: resourceGroup(targetRg)
  params: {
    name: 'evgt-ferry-import-${token}'
    location: targetLocation
    tags: tags
    accountName: targetName
  }
  dependsOn: [
    rg
    targetStorage
  ]
}

module appStorageAccess 'modules/app-storage-access.bicep' = {
  name: 'app-storage-access'
  scope: rg
  params: {
    accountName: appStorage.outputs.name
    appPrincipalId: identity.outputs.principalId
    deadLetterPrincipalId: importEvents.outputs.principalId
    deadLetterContainerName: deadLetterContainerName
  }
}

module vault 'modules/keyvault.bicep' = if (keyVaultMode == 'new') {
  name: 'key-vault'
  scope: rg
  params: {
    name: vaultName
    location: location
    tags: tags
  }
}

module vaultAccess 'modules/keyvault-access.bicep' = {
  name: 'key-vault-access'
  scope: resourceGroup(vaultRg)
  params: {
    vaultName: vaultName
    appPrincipalId: identity.outputs.principalId
    operatorPrincipalId: operatorPrincipalId
  }
  dependsOn: [
    rg
    vault
  ]
}

module registryAccess 'modules/registry-access.bicep' = [for (registry, i) in registries: {
  name: 'registry-access-${i}'
  scope: resourceGroup(registry.resourceGroupName)
  params: {
    registryName: registry.name
    appPrincipalId: identity.outputs.principalId
    push: registry.push
    importImage: (i == 0) && acrImportHandoff
  }
  dependsOn: [
    rg
  ]
}]

module notifications 'modules/notifications.bicep' = if (deployNotificationsTopic) {
  name: 'notifications'
  scope: rg
  params: {
    name: 'evgt-ferry-notify-${token}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module app 'modules/functionapp.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: appName
    planName: 'plan-ferry-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    deploymentContainerUrl: '${appStorage.outputs.blobEndpoint}${deploymentContainerName}'
    appSettings: appSettings
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
  // The host reads its storage and the import account as soon as it starts.
  dependsOn: [
    appStorageAccess
    targetAccess
  ]
}

// -- outputs: azd keeps them in the environment; hooks/postdeploy.sh reads them ------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output FERRY_APP_HOST_NAME string = app.outputs.defaultHostName
output FERRY_REGISTRY string = registryHosts[0]
output FERRY_KEY_VAULT_URI string = 'https://${vaultHost}/'
output FERRY_SOURCE_CONTAINER_URL string = (sourceStorageMode == 'none') ? '' : 'https://${sourceName}.blob.${storageSuffix}/${transferContainerName}'
output FERRY_TARGET_CONTAINER_URL string = '${targetBlobUri}/${transferContainerName}'
output FERRY_NOTIFICATIONS_ENDPOINT string = deployNotificationsTopic ? notifications.outputs.endpoint : ''
output EVENTGRID_RESOURCE_GROUP string = targetRg
output EVENTGRID_SYSTEM_TOPIC_NAME string = importEvents.outputs.name
output EVENTGRID_IMPORT_CONTAINER string = transferContainerName
output EVENTGRID_DEADLETTER_ACCOUNT_ID string = appStorage.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
