"""``pbxcheck audit [--reports DIR] [--serve] -- CMD [ARGS...]``: the typer command.

Registered on the main app by ``register(app)`` (``python -m pbxcheck.audit`` runs it alone). Only
typer is imported here: the central and the judges load when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130
# Everything after the first word of CMD is CMD's own (`pbxcheck audit python3 client.py -v` works).
CONTEXT_SETTINGS: dict[str, Any] = {"allow_interspersed_args": False}
HELP_EPILOG = (
    "Exit codes: 0 the client conforms (clauses it never exercised are not applicable); 1 a clause"
    " failed; 2 usage or setup error (no command, command not found, no call made); 130 interrupted."
)


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"pbxcheck: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def audit_command(
    command: Annotated[
        list[str] | None,
        typer.Argument(help="The client to audit and its arguments (after --).", metavar="CMD", show_default=False),
    ] = None,
    reports: Annotated[Path, typer.Option(help="Reports folder: audit/, client-certificate.html.")] = Path("reports"),
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Keep the audit central up until Ctrl-C instead of running CMD; then judge."),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds each run of CMD may take before it is stopped.")] = 60.0,
    chaos_hold: Annotated[
        float, typer.Option(help="Chaos 'timeout' answer: seconds a call is held before a 504.", hidden=True)
    ] = 20.0,
) -> None:
    """Audit a client integration against the client-side clauses (CL-* in CLAUSES.md).

    Starts the reference central, runs CMD with API_URL (the API is $API_URL/api.php), API_LOGIN,
    API_SENHA, API_TOKEN and API_CA (a CA file) in its environment (also in reports/audit/client.env,
    mode 0600), records every request, runs CMD again against a certificate API_CA did not sign, then
    once per wrong answer (denial, Requisicao Invalida, HTML 500, timeout). Writes
    reports/audit/client-clauses.json and reports/client-certificate.html."""
    from .session import audit

    argv = list(command or [])
    if serve and argv:
        _fail("--serve runs no command: drop the command, or drop --serve")
    if timeout <= 0 or chaos_hold <= 0:
        _fail("--timeout and --chaos-hold must be positive")
    if not serve:
        from .command import find_command

        why = find_command(argv)
        if why is not None:
            _fail(why)
    from ..signals import interrupts

    try:
        with interrupts():  # SIGTERM and SIGHUP stop the command and the central like Ctrl-C
            code = audit(argv, reports, serve=serve, timeout=timeout, hold_s=chaos_hold)
    except KeyboardInterrupt:
        _fail("interrupted: the command and the audit central were stopped", EXIT_INTERRUPTED)
    except (OSError, RuntimeError) as exc:
        _fail(f"audit setup failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """``pbxcheck audit`` on the main app."""
    doc = audit_command.__doc__ or ""
    paragraphs = [" ".join(part.split()) for part in doc.split("\n\n")]  # rich keeps single newlines
    app.command("audit", context_settings=CONTEXT_SETTINGS, epilog=HELP_EPILOG, help="\n\n".join(paragraphs))(
        audit_command
    )


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app(prog_name="pbxcheck audit")
