"""The command line: thin, it parses and delegates.

Exit codes of ``run`` and ``load`` (``EXIT_CODES``, also in their --help): 0 every checked clause (every
load threshold) passed, 1 one failed, 2 usage or setup error, 130 interrupted (SIGINT, SIGTERM or
SIGHUP: children stopped, temp folders removed, reports marked incomplete). ``central`` runs until one
of those signals and then exits 0; 1 when it cannot start, 2 on bad usage.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from .audit.cli import register as register_audit
from .errors import PbxcheckError, TargetError
from .signals import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from .central.server import Central

#: the last paragraph of the --help of the app, run and load
EXIT_CODES = (
    "Exit codes: 0 every checked clause passed (load: every threshold held); 1 a clause failed"
    " (load: a threshold failed or requests failed); 2 usage or setup error; 130 interrupted"
    " (SIGINT, SIGTERM or SIGHUP: children stopped, temp folders removed, reports marked incomplete)."
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Conformance and load-test harness for a cloud PBX integration API (HTTP + SIP).",
    epilog=EXIT_CODES,
)
err = Console(stderr=True, highlight=False)


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]pbxcheck:[/] {escape(message)}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _check_faults(faults: list[str]) -> None:
    from .central.faults import FAULTS

    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        _fail(f"unknown fault {unknown[0]!r}; `pbxcheck central --list-faults` lists them")


@app.command(epilog=EXIT_CODES)
def run(
    target: Annotated[
        Path | None,
        typer.Option(help="Target TOML file; without it the embedded reference central is started and checked."),
    ] = None,
    reports: Annotated[Path, typer.Option(help="Directory for JUnit, Allure and clause reports.")] = Path("reports"),
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Only without --target: start the embedded central with this fault (repeatable)."),
    ] = None,
    profile: Annotated[str, typer.Option(help="Hypothesis profile: ci (fast, derandomised) or thorough.")] = "ci",
    select: Annotated[str | None, typer.Option("-k", help="pytest -k expression to run a subset of checks.")] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "-v", "--verbose", help="Show pytest's own output (tracebacks) too; it is always in REPORTS/pytest.log."
        ),
    ] = False,
) -> None:
    """Check a central clause by clause; write reports/; exit 1 on any failed clause.

    Prints a banner (target, endpoints, TLS verification, profile, contract), progress by clause, then
    one line per failed clause with its failure file, the verdict and where certificate.html is.

    SIGTERM and SIGHUP are handled like Ctrl-C: pytest and the embedded central are stopped, the
    temp folders removed, clauses.json/clauses.md marked incomplete; the exit code is 130."""
    from .target import load_target

    faults = list(fault or [])
    if target is not None:
        if faults:
            _fail("--fault only applies to the embedded central (no --target)")
        try:
            load_target(target)
        except TargetError as exc:
            _fail(str(exc))
    elif faults:
        _check_faults(faults)
    if profile not in ("ci", "thorough"):
        _fail(f"--profile must be ci or thorough, not {profile!r}")
    from . import runner

    extra = ["-k", select] if select else []
    code = runner.run(
        str(target) if target else None,
        str(reports),
        faults=faults,
        extra_args=extra,
        hypothesis_profile=profile,
        verbose=verbose,
    )
    raise typer.Exit(code)


@app.command()
def central(
    host: Annotated[str, typer.Option(help="Address every listener binds to.")] = "127.0.0.1",
    api_port: Annotated[int, typer.Option(help="HTTPS API port (0 picks a free one).")] = 8443,
    plain_port: Annotated[int, typer.Option(help="Plain-HTTP port that answers Erro de Protocolo.")] = 8080,
    sip_port: Annotated[int, typer.Option(help="SIP UDP and TCP port.")] = 7048,
    ws_port: Annotated[int, typer.Option(help="SIP over secure WebSocket (wss) port.")] = 8089,
    ws_plain_port: Annotated[int, typer.Option(help="SIP over plain WebSocket (ws) port.")] = 8088,
    db: Annotated[Path | None, typer.Option(help="SQLite file; data survives restarts. Default: a temp file.")] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Directory for certificates and logs. Default: a temp dir.")
    ] = None,
    fault: Annotated[
        list[str] | None, typer.Option(help="Break one clause on purpose (repeatable); see --list-faults.")
    ] = None,
    clock_speed: Annotated[float, typer.Option(help="Dialer clock multiplier (2 = twice as fast).")] = 1.0,
    write_target: Annotated[
        Path | None, typer.Option(help="Write a target file describing this central once it listens.")
    ] = None,
    list_faults: Annotated[bool, typer.Option("--list-faults", help="List the fault switches and exit.")] = False,
    exit_with_parent: Annotated[
        int | None, typer.Option(hidden=True, help="Stop when this parent PID is gone.")
    ] = None,
) -> None:
    """Run the reference central (HTTPS API, plain HTTP, SIP UDP/TCP/WS/WSS, SQLite) until Ctrl-C.

    Prints its listeners and the target file describing it (credentials included; without
    --write-target it is target.toml in the state dir) once it listens. SIGTERM and SIGHUP stop it
    like Ctrl-C: the temp folder it made is removed and it exits 0 (1: it could not start)."""
    import signal

    from .central.faults import FAULTS
    from .signals import HANDLED

    # CentralProcess starts us with these blocked (so that its Popen is never cut short): a stop
    # asked meanwhile is delivered here, before anything was made.
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if list_faults:
        from rich.table import Table

        table = Table("fault", "clauses", "what it breaks")
        for f in sorted(FAULTS.values(), key=lambda f: (f.clauses, f.name)):
            table.add_row(f.name, " ".join(f.clauses), f.description)
        Console().print(table)
        raise typer.Exit(0)
    faults = list(fault or [])
    _check_faults(faults)
    for name, port in (
        ("api-port", api_port),
        ("plain-port", plain_port),
        ("sip-port", sip_port),
        ("ws-port", ws_port),
        ("ws-plain-port", ws_plain_port),
    ):
        if not 0 <= port < 65536:
            _fail(f"--{name} must be 0-65535, not {port}")
    if clock_speed <= 0:
        _fail("--clock-speed must be positive")
    from .central.server import CentralConfig, run_forever, write_target_file

    config = CentralConfig(
        host=host,
        api_port=api_port,
        plain_port=plain_port,
        sip_port=sip_port,
        ws_port=ws_port,
        ws_plain_port=ws_plain_port,
        db_path=str(db) if db else None,
        state_dir=str(state_dir) if state_dir else None,
        faults=frozenset(faults),
        clock_speed=clock_speed,
    )

    def ready(c: Central) -> None:
        path = write_target
        if path is None:  # the credentials live in the database; say where a target file holds them
            path = Path(c.state_dir) / "target.toml"
            write_target_file(c.target(), str(path))
        print(listeners_text(c, path.resolve()), flush=True)

    try:
        run_forever(
            config,
            write_target=str(write_target) if write_target else None,
            on_ready=ready,
            parent_pid=exit_with_parent,
        )
    except OSError as exc:
        _fail(f"cannot start the central: {exc}", 1)
    except KeyboardInterrupt:  # a signal before its handlers were set: stopped all the same
        raise typer.Exit(0) from None


def listeners_text(c: Central, target_file: Path) -> str:
    """What ``pbxcheck central`` prints once it listens: every URL and port, where the target file is.
    The credentials stay in that file (mode 600)."""
    t = c.target()
    rows = [
        ("API (HTTPS)", f"{t.api_url}/api.php"),
        ("plain HTTP", t.plain_url),
        ("SIP UDP", f"{t.sip_host}:{t.sip_udp_port}"),
        ("SIP TCP", f"{t.sip_host}:{t.sip_tcp_port}"),
        ("SIP WS", t.sip_ws_url),
        ("SIP WSS", t.sip_wss_url),
        ("target file", f"{target_file} (login, senha, tokens, extension passwords)"),
    ]
    if c.config.faults:
        rows.append(("faults", " ".join(sorted(c.config.faults))))
    lines = ["pbxcheck central: listening"] + [f"  {name:12} {value}" for name, value in rows]
    return "\n".join(lines + ["Ctrl-C (or SIGTERM) to stop."])


@app.command(epilog=EXIT_CODES)
def load(
    scenario: Annotated[
        str | None, typer.Argument(help="Scenario name (see --list), a locustfile path, or `compare A B`.")
    ] = None,
    files: Annotated[
        list[str] | None,
        typer.Argument(help="With `compare`: the baseline result, then the result to judge.", show_default=False),
    ] = None,
    target: Annotated[
        Path | None, typer.Option(help="Target TOML; without it the embedded central is started.")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Open model: requests per second (latency from each request's intended send time)."),
    ] = None,
    ramp: Annotated[str, typer.Option(help="Open model: time to reach --rate linearly, e.g. 10s.")] = "0s",
    users: Annotated[
        int | None, typer.Option(help="Concurrent users (closed model: 10; open model: enough for the rate).")
    ] = None,
    spawn_rate: Annotated[float | None, typer.Option(help="Users started per second.")] = None,
    think_time: Annotated[
        float | None,
        typer.Option(help="Closed model: mean seconds between a user's requests (default [load] think_time, else 1)."),
    ] = None,
    run_time: Annotated[str, typer.Option(help="Bounded duration, e.g. 30s, 2m.")] = "30s",
    profile: Annotated[Path | None, typer.Option(help="Proportions file for mixed ([weights] action = n).")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Only without --target: start the embedded central with this fault (e.g. slow-api)."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help="An earlier <scenario>.result.json: exit 1 on a regression beyond the tolerance."),
    ] = None,
    tolerance: Annotated[
        list[str] | None, typer.Option(help="METRIC=RATIO over [load] tolerance (default p99_ms=0.1, throughput=0.1).")
    ] = None,
    web: Annotated[bool, typer.Option("--web", help="Serve Locust's web UI while the run goes.")] = False,
    web_host: Annotated[str, typer.Option(help="Address Locust's web UI binds to.")] = "127.0.0.1",
    processes: Annotated[
        int, typer.Option(help="Locust worker processes on this machine (a master plus N workers).")
    ] = 0,
    master: Annotated[bool, typer.Option("--master", help="Run as Locust master (distributed).")] = False,
    worker: Annotated[
        bool, typer.Option("--worker", help="Run as Locust worker (distributed; needs --target).")
    ] = False,
    master_host: Annotated[str, typer.Option(help="Master address for --worker.")] = "127.0.0.1",
    expect_workers: Annotated[int, typer.Option(help="Workers the master waits for before starting.")] = 1,
    max_fail_ratio: Annotated[
        float | None, typer.Option(help="Fail (exit 1) above this failure ratio (default [load] fail_ratio, else 0).")
    ] = None,
    max_p95_ms: Annotated[
        float | None, typer.Option(help="Fail (exit 1) above this 95th percentile (Locust's).")
    ] = None,
    max_p99_ms: Annotated[
        float | None, typer.Option(help="Fail (exit 1) above this 99th percentile (HDR; default [load] p99_ms).")
    ] = None,
    max_lost: Annotated[
        int | None,
        typer.Option(help="Fail (exit 1) above this many acknowledged inserts missing (default [load] lost, else 0)."),
    ] = None,
    max_late_ratio: Annotated[
        float,
        typer.Option(
            help="Open model: the generator counts as saturated (exit 1) when more of the requests than this ratio go out late (>10 ms) or the rate falls that far short."
        ),
    ] = 0.01,
    cleanup: Annotated[
        bool, typer.Option(help="deletediscador on the disposable campaign after an inserting scenario.")
    ] = True,
    central_cpu: Annotated[int | None, typer.Option(hidden=True, help="Pin the embedded central to this CPU.")] = None,
    agents: Annotated[
        int | None,
        typer.Option(
            help="click-to-call: phones registered for the origins (default 20 on a loopback target, 0: none)."
        ),
    ] = None,
    reports: Annotated[Path, typer.Option(help="Directory for the results (reports/load/).")] = Path("reports"),
    list_scenarios: Annotated[bool, typer.Option("--list", help="List the scenarios and exit.")] = False,
) -> None:
    """Run a bounded Locust load scenario against a central; thresholds and a baseline decide the exit code.

    Closed model by default (users with think time); --rate gives the open model. Every run writes
    reports/load/<scenario>.result.json, .html, .png and CSVs. `pbxcheck load compare A B` judges
    result B against baseline A offline. SIGTERM and SIGHUP are handled like Ctrl-C: Locust (and its
    workers) and the embedded central are stopped, the temp folders removed, the results marked
    incomplete; the exit code is 130."""
    from . import loadrun

    if list_scenarios:
        for name, desc in loadrun.scenarios().items():
            Console(soft_wrap=True).print(f"{name:20} {desc}", markup=False, highlight=False)
        raise typer.Exit(0)
    if scenario is None:
        _fail("a scenario is needed (see --list), or `compare BASELINE RESULT`")
    try:
        tolerances = loadrun.parse_tolerances(list(tolerance or []))
        if scenario == "compare":
            if len(files or []) != 2:
                _fail("usage: pbxcheck load compare BASELINE.result.json RESULT.result.json")
            from .target import load_target

            tol = {**(load_target(target).load.tolerance if target else {}), **tolerances}
            raise typer.Exit(loadrun.compare_files(files[0], files[1], tol))  # type: ignore[index]
        if files:
            _fail(f"unexpected argument {files[0]!r}")
        faults = list(fault or [])
        if faults:
            _check_faults(faults)
        code = loadrun.run(
            scenario,
            loadrun.Options(
                target=str(target) if target else None,
                users=users,
                spawn_rate=spawn_rate,
                run_time=run_time,
                rate=rate,
                ramp=ramp,
                think_time=think_time,
                processes=processes,
                web=web,
                web_host=web_host,
                master=master,
                worker=worker,
                master_host=master_host,
                expect_workers=expect_workers,
                max_fail_ratio=max_fail_ratio,
                max_p95_ms=max_p95_ms,
                max_p99_ms=max_p99_ms,
                max_lost=max_lost,
                max_late_ratio=max_late_ratio,
                baseline=str(baseline) if baseline else None,
                profile=str(profile) if profile else None,
                faults=faults,
                reports=str(reports),
                cleanup=cleanup,
                tolerance=tolerances,
                central_cpu=central_cpu,
                agents=agents,
            ),
        )
    except TargetError as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command("report")
def report_command(
    directory: Annotated[Path, typer.Argument(help="The reports folder of a run (holds clauses.json).")] = Path(
        "reports"
    ),
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also print it to DIR/certificate.pdf with headless Chromium.")
    ] = False,
) -> None:
    """Render DIR/certificate.html again from DIR (clauses.json, failures/, allure-results/, run-info.json).

    The file is self-contained (inline CSS and SVG, relative links): open it from disk. --pdf prints
    it with Debian's headless Chromium (package chromium); without Chromium that is one line, exit 2."""
    from . import certificate, report

    if not (directory / report.CLAUSES_JSON).is_file():
        _fail(f"no {report.CLAUSES_JSON} in {directory}: not the reports folder of a run")
    try:
        html = certificate.write(directory)
    except (OSError, ValueError) as exc:
        _fail(f"cannot render {directory / certificate.CERTIFICATE_HTML}: {exc}")
    print(f"certificate: {html}")
    if pdf:
        if certificate.find_chromium() is None:
            _fail("--pdf needs Chromium, not found (Debian: apt-get install chromium)")
        try:
            out = certificate.print_pdf(html, directory / certificate.CERTIFICATE_PDF)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            _fail(f"printing to PDF failed: {exc}", 1)
        print(f"pdf: {out}")


register_audit(app)  # `pbxcheck audit`: src/pbxcheck/audit/cli.py


def main() -> None:
    try:
        app()
    except PbxcheckError as exc:
        err.print(f"pbxcheck: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:  # one that got past run/load's own handling
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
