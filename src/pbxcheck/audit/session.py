"""One audit from start to verdict: the central up, the env handed out, the phases, the judges, the
reports, the exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .. import certificate, report
from ..central.process import CentralStartError
from ..redact import Redactor
from .cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .env import ENV_FILE, client_env, keep_ca, write_env_file
from .phases import audit_central, run_phases, serve_until_interrupted
from .recorder import Recorder
from .report import AUDIT_DIR, judge, leaks, write_reports
from .verdicts import NORMAL


def audit(
    argv: Sequence[str],
    reports: Path,
    *,
    serve: bool = False,
    timeout: float = 60.0,
    hold_s: float = 20.0,
    out: TextIO | None = None,
) -> int:
    """The audit's exit code: 0 conforms (or clauses not applicable), 1 a clause failed or a secret
    leaked into the reports, 2 the command made no call. The central is stopped before judging."""
    out = out or sys.stdout

    def say(message: str) -> None:
        out.write(f"pbxcheck audit: {message}\n")
        out.flush()

    recorder = Recorder(hold_s=hold_s)
    audit_dir = reports / AUDIT_DIR
    try:
        central_cm = audit_central(recorder)
        with central_cm as central:
            target = central.target()
            assert central.tls is not None
            env = client_env(target, keep_ca(central.tls.ca_file, audit_dir))
            env_file = write_env_file(audit_dir / ENV_FILE, env)
            secrets = tuple(s for s in (target.senha, target.token, target.foreign_token) if s)
            named = {"API_SENHA": target.senha, "API_TOKEN": target.token}
            redactor = Redactor(secrets)
            say(f"audit central at {env['API_URL']}/api.php (plain HTTP: {target.plain_url}); CA {env['API_CA']}")
            say(f"env file {env_file} (mode 0600: API_SENHA and API_TOKEN in it)")
            if serve:
                say("serving until Ctrl-C; run your client with that env file (`set -a; . FILE; set +a`)")
                ev = serve_until_interrupted(recorder, say)
            else:
                ev = run_phases(argv, env, recorder, timeout=timeout, redactor=redactor, out=out, say=say)
    except CentralStartError as exc:
        raise RuntimeError(f"the audit central did not start: {exc}") from None
    if not ev.of(NORMAL):
        run = ev.runs.get(NORMAL)
        ended = "" if run is None else (" (stopped: time bound)" if run.timed_out else f" (exit code {run.exit_code})")
        who = "no client" if serve else "the command"
        say(f"{who} made no call to $API_URL{ended}: nothing to audit")
        return EXIT_USAGE
    verdicts = judge(ev, secrets)
    table_path, cert_path = write_reports(reports, verdicts, ev, argv=argv, api_url=env["API_URL"], redactor=redactor)
    for v in verdicts:
        out.write(redactor.text(v.line()) + "\n")
    table = json.loads(table_path.read_text(encoding="utf-8"))
    _, sentence = certificate.verdict(table)
    say(sentence)
    say(f"{table_path} · {cert_path}")
    found = leaks(reports, named)
    if found:
        say(f"SECRET LEAK: {len(found)} piece(s) of a secret in the audit's reports; do not publish them:")
        for leak in found[:20]:
            say(f"  {leak}")
        return EXIT_FAILED
    return EXIT_FAILED if report.failed_clauses(table) else EXIT_OK
