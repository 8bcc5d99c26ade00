"""Azure Functions entry point (Python v2 programming model).

This module only creates the app and registers blueprints; all logic lives in
api/ (HTTP and other triggers), orchestrations/, activities/ and ferry/.
"""

import azure.durable_functions as df
import azure.functions as func

from api.health import bp as health_bp

# FUNCTION level by default: every route needs a function key unless it opts out
# (as /api/health does).
app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(health_bp)
