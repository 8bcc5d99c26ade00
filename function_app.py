"""Azure Functions entry point (Python v2 programming model).

This module only creates the app and registers blueprints; all logic lives in
api/ (HTTP and other triggers), orchestrations/, activities/ and ferry/.
"""

import azure.durable_functions as df
import azure.functions as func

from activities.acr_import import bp as acr_import_activities
from activities.blob_copy import bp as blob_copy_activities
from activities.copy_jobs import bp as copy_job_activities
from activities.sync import bp as sync_activities
from api.claims_sweep import bp as claims_sweep_bp
from api.health import bp as health_bp
from api.import_image import bp as import_image_bp
from api.import_trigger import bp as import_trigger_bp
from api.pipelines import bp as pipelines_bp
from api.runs import bp as runs_bp
from api.sync_verdicts import bp as sync_verdicts_bp
from api.syncs import bp as syncs_bp
from orchestrations.copy_job import bp as copy_job_orchestrations
from orchestrations.runs import bp as run_orchestrations
from orchestrations.sync import bp as sync_orchestrations

# FUNCTION level by default: every route needs a function key unless it opts out
# (as /api/health does).
app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(health_bp)
app.register_functions(claims_sweep_bp)
app.register_functions(import_trigger_bp)
app.register_functions(pipelines_bp)
app.register_functions(runs_bp)
app.register_functions(import_image_bp)
app.register_functions(syncs_bp)
app.register_functions(sync_verdicts_bp)
app.register_functions(copy_job_orchestrations)
app.register_functions(run_orchestrations)
app.register_functions(sync_orchestrations)
app.register_functions(copy_job_activities)
app.register_functions(blob_copy_activities)
app.register_functions(acr_import_activities)
app.register_functions(sync_activities)
