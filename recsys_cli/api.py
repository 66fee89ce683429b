"""`recsys api`: serve the HTTP API (event collection, catalog, shopper lists) with uvicorn."""

from __future__ import annotations

import typer

from recsys_cli.common import friendly_errors, settings


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""

    @app.command()
    @friendly_errors
    def api(
        host: str = typer.Option(None, "--host", help="Address to listen on (default: RECSYS_API_HOST, 127.0.0.1)."),
        port: int = typer.Option(
            None, "--port", min=1, max=65535, help="Port to listen on (default: RECSYS_API_PORT, 8000)."
        ),
        workers: int = typer.Option(
            1, "--workers", min=1, help="Worker processes; each opens its own Mongo client and Kafka producer."
        ),
    ) -> None:
        """Serve the API: POST /v1/events, PUT /v1/products, shopper lists under /v1/users/.

        Reads need MongoDB; writes need Kafka and answer 503 while it is down. Interactive docs at /schema/swagger, the schema at /schema/openapi.json, metrics at /metrics. Write routes need X-API-Key when RECSYS_API_KEYS is set.
        """
        import uvicorn

        s = settings()
        host = host or s.api_host
        port = port or s.api_port
        typer.echo(f"recsys API on http://{host}:{port} (docs: http://{host}:{port}/schema/swagger)", err=True)
        if workers == 1:
            from recsys_api.app import create_app

            uvicorn.run(create_app(s), host=host, port=port, log_level="warning", access_log=False)
        else:
            uvicorn.run(
                "recsys_api.main:app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
                access_log=False,
            )
