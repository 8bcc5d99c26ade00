"""The deployment under infra/, checked without a Bicep compiler: every template parses, the app
settings and roles match what the code reads and needs, and azd's wiring holds together."""
