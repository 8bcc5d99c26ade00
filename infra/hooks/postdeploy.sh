#!/bin/sh
# azd postdeploy hook: subscribe the import trigger to the import account's Event Grid system topic.
#
# The subscription's endpoint carries the blob extension's system key (blobs_extension), which the
# Functions host creates only once it runs the code with the EventGrid-sourced blob trigger; so this
# runs after `azd deploy`, not in main.bicep. It wakes the host, waits for the key, then deploys
# infra/eventgrid.bicep into the topic's resource group. Re-running it is safe (same names).
#
# Needs: az (logged in, same subscription as azd), and the outputs of main.bicep, which azd passes to
# hooks as environment variables (read from `azd env get-values` when run by hand).
set -eu

cd "$(dirname "$0")/../.."

if ! command -v az >/dev/null 2>&1; then
    echo "postdeploy: the Azure CLI (az) is needed to create the Event Grid subscription" >&2
    exit 1
fi

if [ -z "${AZURE_FUNCTION_APP_NAME:-}" ] && command -v azd >/dev/null 2>&1; then
    # KEY="value" lines; values of this template's outputs hold no quotes or newlines.
    while IFS='=' read -r key value; do
        case "$key" in
            ''|\#*) continue ;;
        esac
        value=${value#\"}
        value=${value%\"}
        export "$key=$value"
    done <<ENV
$(azd env get-values)
ENV
fi

for name in AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME FERRY_APP_HOST_NAME EVENTGRID_RESOURCE_GROUP \
            EVENTGRID_SYSTEM_TOPIC_NAME EVENTGRID_IMPORT_CONTAINER EVENTGRID_DEADLETTER_ACCOUNT_ID \
            EVENTGRID_DEADLETTER_CONTAINER; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        echo "postdeploy: $name is not set; run azd provision first" >&2
        exit 1
    fi
done

# The host starts on the first request; the health route is anonymous.
curl -fsS -o /dev/null --max-time 60 "https://${FERRY_APP_HOST_NAME}/api/health" || true

key=""
attempt=0
while [ -z "$key" ] && [ "$attempt" -lt 20 ]; do
    attempt=$((attempt + 1))
    key=$(az functionapp keys list --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
              --query "systemKeys.blobs_extension" --output tsv 2>/dev/null || true)
    if [ -z "$key" ]; then
        echo "postdeploy: waiting for the blobs_extension system key ($attempt/20)"
        sleep 15
    fi
done
if [ -z "$key" ]; then
    echo "postdeploy: no blobs_extension system key on $AZURE_FUNCTION_APP_NAME: is FERRY_IMPORT_TRIGGER_SOURCE EventGrid and the code deployed?" >&2
    exit 1
fi

# The key goes in a parameters file readable only by this user, not on a command line.
umask 077
params=$(mktemp)
trap 'rm -f "$params"' EXIT
cat >"$params" <<JSON
{
  "\$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "systemTopicName": {"value": "${EVENTGRID_SYSTEM_TOPIC_NAME}"},
    "functionAppHostName": {"value": "${FERRY_APP_HOST_NAME}"},
    "blobsExtensionKey": {"value": "${key}"},
    "containerName": {"value": "${EVENTGRID_IMPORT_CONTAINER}"},
    "deadLetterAccountId": {"value": "${EVENTGRID_DEADLETTER_ACCOUNT_ID}"},
    "deadLetterContainerName": {"value": "${EVENTGRID_DEADLETTER_CONTAINER}"}
  }
}
JSON

az deployment group create --name ferry-import-trigger --resource-group "$EVENTGRID_RESOURCE_GROUP" \
    --template-file infra/eventgrid.bicep --parameters "@$params" --output none
echo "postdeploy: Event Grid delivers BlobCreated in ${EVENTGRID_IMPORT_CONTAINER}/ to import_trigger"
