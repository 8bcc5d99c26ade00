// The Event Grid subscription that delivers BlobCreated from the import account to the import
// trigger. Deployed by hooks/postdeploy.sh after the code, into the resource group of the system
// topic (main.bicep's output EVENTGRID_RESOURCE_GROUP): the endpoint needs the blob extension's
// system key, which the host creates only once it runs the EventGrid-sourced blob trigger.
//
// Only committed blobs under the watched container are delivered: Put Blob, Put Block List (how
// Ferry's export commits an archive) and Copy Blob (how copy-blob lands it server-side). Events
// Event Grid cannot deliver go to the dead-letter container in the app's storage account.

@description('Name of the Event Grid system topic on the import account (main.bicep output EVENTGRID_SYSTEM_TOPIC_NAME).')
param systemTopicName string

@description('Host name of the Function App (main.bicep output FERRY_APP_HOST_NAME).')
param functionAppHostName string

@description('The blob trigger\'s function name as the host indexes it (function_app.py: import_trigger).')
param functionName string = 'import_trigger'

@description('System key blobs_extension of the Function App.')
@secure()
param blobsExtensionKey string

@description('The container the trigger watches: the container of FERRY_IMPORT_BLOB_PATH.')
param containerName string = 'transfer'

@description('Resource id of the storage account holding the dead-letter container.')
param deadLetterAccountId string

@description('The dead-letter container.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Name of the subscription.')
param subscriptionName string = 'ferry-import-trigger'

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource importTrigger 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: subscriptionName
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionAppHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=${blobsExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${containerName}/blobs/'
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.api'
          values: [
            'PutBlob'
            'PutBlockList'
            'CopyBlob'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = importTrigger.id
