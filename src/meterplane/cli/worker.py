import time

import typer

from meterplane.cli.context import print_json, session_factory
from meterplane.kit.time import utc_now
from meterplane.worker import run_once


def worker(
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
    interval: int = typer.Option(60, "--interval", min=1, help="Seconds between passes."),
) -> None:
    """Run the schedule: monthly close, auto-approval, past-due invoices."""
    factory = session_factory()
    while True:
        report = run_once(factory, now=utc_now())
        if once:
            print_json(report.__dict__)
            return
        time.sleep(interval)
