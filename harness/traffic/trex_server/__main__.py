"""``python -m harness.traffic.trex_server --vdev VDEV [--vdev ...]``: a TRex-compatible server in front of
serpens-gen, one TRex port per vdev (serpens-gen's ``--vdev``, e.g. a memif client facing serpens-wire).

Prints ``READY rpc=<port> pub=<port>`` on stdout once both sockets are bound (port 0 = any free port), then
answers until SIGINT/SIGTERM or the ``shutdown`` RPC. It does not take the harness's run lock: it runs
serpens-gen on ``cores.generator`` only while a client has started traffic.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from harness import config as cfg
from harness.config import ConfigError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--vdev", "vdevs", multiple=True, required=True, metavar="VDEV",
              help="One TRex port per --vdev (serpens-gen's device argument), in port order.")
@click.option("-c", "--config", "files", multiple=True, type=click.Path(dir_okay=False),
              help="YAML merged over the defaults (generator.local, cores.generator).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one setting.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind both sockets to.")
@click.option("--rpc-port", default=4501, show_default=True, type=click.IntRange(0, 65535),
              help="RPC (REQ/REP) port; 0 picks a free one.")
@click.option("--pub-port", default=4500, show_default=True, type=click.IntRange(0, 65535),
              help="Async publisher (PUB) port; 0 picks a free one.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where stream files and reports go (default: a run directory under machine.runtime_dir).")
@click.option("-v", "--verbose", is_flag=True, help="Log every RPC error and trial to stderr.")
def main(vdevs: tuple[str, ...], files: tuple[str, ...], overrides: tuple[str, ...], host: str,
         rpc_port: int, pub_port: int, work_dir: Path | None, verbose: bool) -> None:
    """A TRex-compatible control server (JSON-RPC over ZMQ) for the built-in generator."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="trex-server: %(levelname)s %(message)s")
    try:
        config = cfg.load(files, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from harness.native import RunDir
    from harness.traffic.trex_server.server import TRexServer

    run_dir = None
    if work_dir is None:
        run_dir = RunDir(config, "trexsrv")
        work_dir = run_dir.path
    try:
        try:
            server = TRexServer(config, list(vdevs), work_dir, host=host, rpc_port=rpc_port,
                                pub_port=pub_port)
        except Exception as exc:   # a port in use, a bad address: one line, no traceback
            raise click.ClickException(f"cannot start the TRex-compatible server on {host}: {exc}") from None

        def stop(signum: int, frame: Any) -> None:
            server.shutdown()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        click.echo(f"READY rpc={server.rpc_port} pub={server.pub_port}")
        sys.stdout.flush()
        server.serve_forever()
    finally:
        if run_dir is not None:
            run_dir.remove()


if __name__ == "__main__":
    main()
