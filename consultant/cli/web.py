"""`consultant web`: the review app, served by uvicorn."""

from __future__ import annotations

import click

from consultant.cli.database import open_for_command
from consultant.config import Config


@click.command()
@click.option("--host", help="Default: [web] host.")
@click.option("--port", type=click.IntRange(0, 65535), help="Default: [web] port.")
@click.pass_obj
def web(config: Config, host: str | None, port: int | None) -> None:
    """Serve the review app until SIGTERM. Put it behind a TLS proxy in production."""
    # Imported here: every other command (workers, pollers) would carry FastAPI's
    # and uvicorn's memory for nothing.
    import uvicorn

    from consultant.web.app import create_app

    app = create_app(config, open_for_command(config))
    uvicorn.run(
        app,
        host=host or config.web.host,
        port=port if port is not None else config.web.port,
        # The app believes X-Forwarded-For from [web] trusted_proxies only; uvicorn's own
        # handling would believe it from any local process.
        proxy_headers=False,
        server_header=False,
        log_level="warning",
    )
