"""Command line of the web dashboard."""

import typer

app = typer.Typer(help="Bitfolio web dashboard (NiceGUI).", no_args_is_help=True)


@app.command()
def serve() -> None:
    """Serve the dashboard (WEB_GATEWAY_URL, WEB_RABBIT_URL, WEB_HTTP_PORT)."""
    from bitfolio_web.main import run
    from bitfolio_web.settings import Settings

    run(Settings())


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("bitfolio-web 0.1.0")
