import typer


def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", min=1),
) -> None:
    """Serve the API (and, as they land, the console and portal)."""
    import uvicorn

    uvicorn.run(
        "meterplane.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )
