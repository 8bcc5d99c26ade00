// The Function App on Flex Consumption (FC1, Linux). The runtime (Python 3.11) is named in
// functionAppConfig.runtime, as Flex Consumption requires: FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION are not app settings there. The app runs as its user-assigned identity,
// which also reads the deployment package from the app's storage account. Basic (password)
// publishing is off: azd deploys with an Entra token.

@description('Name of the Function App (its host name is NAME.azurewebsites.net).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the plan and the app (the app also gets azd-service-name).')
param tags object = {}

@description('The service name in azure.yaml that azd deploys to this app.')
param azdServiceName string = 'api'

@description('Resource id of the app\'s user-assigned identity.')
param identityId string

@description('URL of the blob container the deployment package goes to.')
param deploymentContainerUrl string

@description('Every app setting, name to value (main.bicep builds them).')
param appSettings object

@description('Python version (functionAppConfig.runtime.version).')
@allowed([
  '3.11'
])
param pythonVersion string = '3.11'

@description('Memory of each instance, in MB.')
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

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption offers zone redundancy only in some regions; set zoneRedundant on the plan where the region supports it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP endpoint, and basic publishing credentials are disabled for both ftp and scm below (basicPublishingCredentialsPolicies).
  // checkov:skip=CKV_AZURE_222: The HTTP API (function keys) and the Event Grid webhook of the import trigger are called over the public endpoint; Event Grid cannot deliver to a private one without a virtual network.
  // checkov:skip=CKV_AZURE_17: Client certificates would be required on every call, and neither Event Grid's webhook delivery nor ACR Transfer clients send one; routes are protected by function keys.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per function group; always-ready instances cost money and are a choice for the operator (functionAppConfig.scaleAndConcurrency.alwaysReady).
  // checkov:skip=CKV_AZURE_213: App Service health checks do not apply to Flex Consumption instances; GET /api/health (anonymous) is there for external probes.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': azdServiceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // These checks read a siteConfig ('web' config); this resource is the 'appsettings' config, a
  // name-to-value map, so none of their properties belong here (the site above is checked itself).
  // checkov:skip=CKV_AZURE_13: This is the 'appsettings' config, a name-to-value map; the check reads siteConfig properties ('web' config), which do not belong here.
  // checkov:skip=CKV_AZURE_63: This is the 'appsettings' config, a name-to-value map; the check reads siteConfig properties ('web' config), which do not belong here.
  // checkov:skip=CKV_AZURE_65: This is the 'appsettings' config, a name-to-value map; the check reads siteConfig properties ('web' config), which do not belong here.
  // checkov:skip=CKV_AZURE_66: This is the 'appsettings' config, a name-to-value map; the check reads siteConfig properties ('web' config), which do not belong here.
  // checkov:skip=CKV_AZURE_80: This is the 'appsettings' config, a name-to-value map; the check reads siteConfig properties ('web' config), which do not belong here.
  // checkov:skip=CKV_AZURE_88: This is the 'appsettings' config, a name-to-value map; the check reads siteConfig properties ('web' config), which do not belong here.
  // checkov:skip=CKV_AZURE_222: This is the 'appsettings' config, a name-to-value map; the check reads siteConfig properties ('web' config), which do not belong here.
  parent: app
  name: 'appsettings'
  properties: appSettings
}

resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = app.name
output id string = app.id
output defaultHostName string = app.properties.defaultHostName
