"""Fixtures of the HTTP API tests (app settings on Azurite, the local runner and its durable
client, unique names), shared by every module of tests/app; tests/faults imports the same ones."""

from tests.app.api import app_env, client, runner, uname  # noqa: F401
