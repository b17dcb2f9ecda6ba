"""kdaug's HTTP service: `service.app.create_app(settings)`, run by `kdaug serve`."""
