"""The `iosignal` command: run, api, worker, observe, migrate, bench, loadbench, applybench,
token."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
from typing import Annotated

import typer

from contract.config import get_settings

cli = typer.Typer(
    help="iosignal: see and steer KVM guest doorbells (ioeventfds) through a web service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

log = logging.getLogger("iosignal")

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if `iosignal run` is killed (even with -9),
    # the kernel sends the worker SIGTERM, so no orphan keeps the VM alive.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _setup_logging() -> None:
    logging.basicConfig(
        level=get_settings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _guard_listen(host: str) -> None:
    """Store IOSIGNAL_ADMIN_TOKEN if set, then refuse an open listener that has no token."""
    from app.core.security import ensure_admin_token, refuse_open_listen
    from contract.db import get_sessionmaker

    token = get_settings().admin_token
    if token:
        with get_sessionmaker()() as db:
            ensure_admin_token(db, token)
    refuse_open_listen(host)


def _serve_api(host: str, port: int | None) -> None:
    import uvicorn

    settings = get_settings()
    # uvicorn re-raises the signal that stopped it once it has shut down; a handler that does
    # nothing lets `run` go on to stop the worker and both commands exit 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port or settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=3,
    )


@cli.command()
def migrate() -> None:
    """Upgrade the database (IOSIGNAL_DATABASE_URL) to the newest schema."""
    from contract.migrate import upgrade

    _setup_logging()
    url = get_settings().database_url
    upgrade(url)
    typer.echo(f"database at head: {url}")


@cli.command()
def api(
    host: Annotated[str | None, typer.Option(help="Listen address (IOSIGNAL_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (IOSIGNAL_PORT).")] = None,
) -> None:
    """Serve the REST API and dashboard only (no /dev/kvm needed)."""
    _setup_logging()
    host = host or get_settings().host
    _guard_listen(host)
    _serve_api(host, port)


@cli.command()
def worker() -> None:
    """Run the worker: own a KVM VM, apply registrations and workloads, write samples."""
    from worker.main import main as worker_main

    _setup_logging()
    raise typer.Exit(worker_main())


@cli.command()
def observe(
    bench: Annotated[
        bool, typer.Option("--bench", help="Measure the observer's cost instead, and exit.")
    ] = False,
    registrations: Annotated[
        bool,
        typer.Option(
            help="Hear every VMM's KVM_IOEVENTFD/KVM_IRQFD calls (raw syscall tracepoints: a "
            "compare per syscall on the host); --no-registrations counts accesses only."
        ),
    ] = True,
    database: Annotated[
        bool,
        typer.Option(
            help="Write into IOSIGNAL_DATABASE_URL; --no-database serves metrics only "
            "(needs --metrics-address)."
        ),
    ] = True,
    metrics_address: Annotated[
        str | None,
        typer.Option(
            help="Serve Prometheus /metrics at HOST:PORT (e.g. 0.0.0.0:9464) from the "
            "observer's own counters."
        ),
    ] = None,
    metrics_max_addresses: Annotated[
        int,
        typer.Option(
            help="Doorbells with series of their own per VM in /metrics; later ones are summed "
            'as addr="other".',
            min=1,
        ),
    ] = 50,
    latency: Annotated[
        bool,
        typer.Option(
            help="Time each in-kernel doorbell: its consumer thread, kick -> run, kick -> "
            "interrupt, interrupt -> vCPU (scheduler tracepoints: a few tens of ns per context "
            "switch on the host); --no-latency leaves them out."
        ),
    ] = True,
) -> None:
    """Watch every KVM VM on this host (eBPF on KVM's tracepoints), read-only, into the database
    and/or as a Prometheus target.

    Needs root, or CAP_BPF + CAP_PERFMON (+ CAP_SYS_PTRACE to see other users' VMs, and
    CAP_SYS_ADMIN to mount tracefs when it is not mounted).
    """
    if bench:
        from benchmarks.observebench import cli_bench

        raise typer.Exit(cli_bench())
    if not database and metrics_address is None:
        raise typer.BadParameter(
            "--no-database leaves nothing to do without --metrics-address HOST:PORT",
            param_hint="--no-database",
        )
    if metrics_address is not None:
        from observer.exporter import parse_address

        try:
            parse_address(metrics_address)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--metrics-address") from None
    _setup_logging()
    from observer.main import main as observe_main

    raise typer.Exit(
        observe_main(registrations, database, metrics_address, metrics_max_addresses, latency)
    )


@cli.command()
def run(
    host: Annotated[str | None, typer.Option(help="Listen address (IOSIGNAL_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (IOSIGNAL_PORT).")] = None,
) -> None:
    """Migrate the database, then run worker and app together; Ctrl-C or SIGTERM stops both."""
    from contract.migrate import upgrade

    _setup_logging()
    settings = get_settings()
    host = host or settings.host
    upgrade(settings.database_url)
    _guard_listen(host)  # before the worker starts: a refused run leaves nothing behind
    child = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker"],
        preexec_fn=_die_with_parent,
        start_new_session=True,  # Ctrl-C reaches us once; we stop the worker ourselves
    )
    settings_url = f"http://{host}:{port or settings.port}/"
    log.info("dashboard at %s (worker pid %d)", settings_url, child.pid)
    try:
        _serve_api(host, port)  # uvicorn handles SIGINT/SIGTERM and returns
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("worker did not stop within 10 s; killing it")
            child.kill()
            child.wait()


@cli.command()
def bench(
    writes: Annotated[
        int, typer.Option(help="Writes per pass (requests, on a round-trip path).", min=1)
    ] = 200_000,
    repeat: Annotated[int, typer.Option(help="Passes per path.", min=1)] = 5,
    paths: Annotated[
        list[str] | None, typer.Option("--path", help="Only these paths (repeatable).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Reproduce the 2009 doorbell table on a scratch VM: userspace exits vs ioeventfd, then the
    round trip (a kick answered by an interrupt) three ways."""
    from worker.bench import cli_bench

    raise typer.Exit(cli_bench(writes=writes, repeat=repeat, paths=paths, json_out=json_out))


@cli.command()
def loadbench(
    registrations: Annotated[int, typer.Option(help="Registrations sampled.", min=1)] = 1000,
    duration: Annotated[
        float, typer.Option("--duration", "--seconds", help="Seconds to run.", min=1)
    ] = 600.0,
    interval: Annotated[float, typer.Option(help="Sampling tick, seconds.", min=0.1)] = 1.0,
    database_url: Annotated[
        str | None, typer.Option(help="Database to load (default: a temporary SQLite file).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    vms: Annotated[
        int,
        typer.Option(
            help="VMs writing at once, one worker process each; with --hosts, VMs per host.", min=1
        ),
    ] = 1,
    hosts: Annotated[
        int | None,
        typer.Option(help="Simulated observers (hosts) writing at 1 Hz: the fleet's store.", min=1),
    ] = None,
    doorbells: Annotated[int, typer.Option(help="With --hosts: doorbells per VM.", min=1)] = 20,
    steps: Annotated[
        str | None, typer.Option(help="With --hosts: host counts run in turn, e.g. 25,50,100.")
    ] = None,
    processes: Annotated[
        int, typer.Option(help="With --hosts: processes the hosts are spread over.", min=1)
    ] = 2,
) -> None:
    """Load the sample store: N VMs x M registrations; CPU %, missed ticks, lock errors, bytes.
    With --hosts: N observers x M VMs x K doorbells into one PostgreSQL
    (benchmarks/fleetload.py)."""
    _setup_logging()
    if hosts is not None:
        from benchmarks.fleetload import cli_fleetload
        from benchmarks.fleetsim import FleetShape

        counts = [int(n) for n in steps.split(",")] if steps else []
        shape = FleetShape(hosts, vms, doorbells)
        raise typer.Exit(
            cli_fleetload(database_url, shape, duration, interval, counts, processes, json_out)
        )
    from benchmarks.loadbench import cli_loadbench

    raise typer.Exit(
        cli_loadbench(registrations, duration, interval, database_url, json_out=json_out, vms=vms)
    )


@cli.command()
def applybench(
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", "--db", help="Database (default: a temporary SQLite file)."),
    ] = None,
    count: Annotated[int, typer.Option(help="Registrations POSTed one at a time.", min=2)] = 1000,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Time POST /ioeventfds -> 201 (kernel's verdict, real worker): poll only, then wake-up."""
    from benchmarks.applybench import cli_applybench

    raise typer.Exit(cli_applybench(database_url, count, json_out=json_out))


def _add_token_cli() -> None:
    from cli.token import token_cli

    cli.add_typer(token_cli, name="token")


_add_token_cli()


def main() -> None:
    """Console entry point."""
    cli()


if __name__ == "__main__":
    main()
