"""The REST API (FastAPI): routers by concern, built by `service.api.app.create_app`."""
