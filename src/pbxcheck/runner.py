"""``pbxcheck run``: the suites (and SIP probes, when present) under pytest, in a subprocess.

A subprocess, because repeated runs in one interpreter (tests/quality runs dozens) would share
imported suites, Hypothesis state and the plugin's session. Without a target the runner starts the
embedded reference central itself and hands pytest the target file it wrote: that way the runner
knows the secrets, and redacts them from every line pytest prints and from every file under the
reports folder once pytest is done.

Exit codes: 0 every checked clause passed (findings and [unspecified] observations included), 1 a
clause failed (or a check broke), 2 usage or setup error (bad usage, a bad target file, or a target
that fails the preflight: one line per problem, no clause checked), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TextIO

from . import report, signals
from .bundled import bundled_dir
from .checks.profiles import validate_profile
from .errors import PbxcheckError, TargetError
from .redact import Redactor, scan_for_leaks, scan_text
from .target import Target, load_target

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = signals.EXIT_INTERRUPTED  # 128 + SIGINT; for SIGTERM and SIGHUP too


def check_dirs() -> list[Path]:
    """suites/ always; sip_probes/ only when it holds checks (its absence is not an error)."""
    dirs = [bundled_dir("suites")]
    try:
        probes = bundled_dir("sip_probes")
    except FileNotFoundError:
        probes = None
    if probes is not None and any(probes.glob("test_*.py")):
        dirs.append(probes)
    return dirs


def _resolve(paths: Sequence[str]) -> list[str]:
    """Paths as given if they exist, else relative to suites/ or sip_probes/ (``test_auth.py`` works);
    ``suites`` and ``sip_probes`` name the folders themselves, wherever pbxcheck is installed."""
    out = []
    for p in paths:
        base, sep, rest = p.partition("::")
        candidates = [Path(base)] + [d / base for d in check_dirs()]
        if base.rstrip("/") in ("suites", "sip_probes"):
            candidates.append(bundled_dir(base.rstrip("/")))
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise FileNotFoundError(f"no such suite or path: {p}")
        out.append(str(found.resolve()) + sep + rest)
    return out


def pytest_command(
    target_file: str, reports: Path, *, paths: list[str], extra_args: Sequence[str], hypothesis_profile: str
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        *paths,
        "--target",
        target_file,
        "--reports",
        str(reports),
        f"--junitxml={reports / 'junit.xml'}",
        f"--alluredir={reports / 'allure-results'}",
        "--clean-alluredir",
        f"--hypothesis-profile={hypothesis_profile}",
        "-p",
        "no:cacheprovider",
        # The source tree's pytest config is for the harness's own tests (its addopts, its
        # pytest-timeout option, which a plain install lacks): the checks run with none, and from
        # the same rootdir in a source tree and in an installed wheel.
        "-c",
        os.devnull,
        "--rootdir",
        str(bundled_dir("suites").parent),
        "-q",
        "-rfE",
        *extra_args,
    ]


def _stream(proc: subprocess.Popen[bytes], redactor: Redactor, out: TextIO, shown: list[str]) -> None:
    """pytest's output, redacted, to ``out``; ``shown`` keeps what was written for the last pass."""
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        line = redactor.text(raw.decode("utf-8", "replace"))
        shown.append(line)
        out.write(line)
        out.flush()


LEAK_LINES = 20  # the leak report names this many places, then counts the rest


def last_pass(reports_dir: Path, shown: str, target: Target, out: TextIO) -> int:
    """Scan reports/ and the terminal stream for any 6+-character piece of any secret, after every
    redaction has run. Redaction is what keeps secrets out; this pass proves it did, and a run in
    which it did not must not pass as green: each place is named (never the piece), clauses.json
    records the count, and the number of leaks is returned (the run then exits 1)."""
    named = target.named_secrets
    leaks = scan_for_leaks([reports_dir], named) + scan_text(shown, named, where="the terminal output")
    if not leaks:
        return 0
    _say(
        f"SECRET LEAK: {len(leaks)} piece(s) of a secret survived redaction; do not publish {reports_dir} "
        "nor this log before removing them:",
        out,
    )
    for leak in leaks[:LEAK_LINES]:
        _say(f"  {leak}", out)
    if len(leaks) > LEAK_LINES:
        _say(f"  ... and {len(leaks) - LEAK_LINES} more", out)
    table_path = reports_dir / report.CLAUSES_JSON
    with contextlib.suppress(OSError, ValueError):
        table = json.loads(table_path.read_text(encoding="utf-8"))
        table["secret_leaks"] = len(leaks)
        table_path.write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(leaks)


def _unreachable(t: Target) -> list[str]:
    """The target's setup problems, one line each (``preflight``: TLS with the target's CA, one
    read-only authenticated call, a SIP OPTIONS per transport); [] when every endpoint answers.

    Without this a central that is down, or a typo in the target file, costs a minute of timeouts
    and dozens of clauses marked failed, all saying the same thing."""
    from .preflight import PROBE_CAP_S, preflight

    return [str(p) for p in preflight(t, timeout=min(t.timeout, PROBE_CAP_S))]


def _say(message: str, out: TextIO) -> None:
    out.write(f"pbxcheck: {message}\n")
    out.flush()


def run(
    target: str | None,
    reports: str = "reports",
    *,
    faults: Sequence[str] = (),
    paths: Sequence[str] | None = None,
    extra_args: Sequence[str] = (),
    hypothesis_profile: str = "ci",
    out: TextIO | None = None,
) -> int:
    """Run the checks against ``target`` (a TOML path) or the embedded central; the exit code.

    SIGINT, SIGTERM and SIGHUP, wherever they land, stop pytest (its whole process tree), then the
    embedded central; every temp folder goes, the reports say they are incomplete, the code is 130."""
    out = out or sys.stdout
    reports_dir = Path(reports)
    with signals.interrupts() as seen:
        try:
            return _run(
                target,
                reports,
                faults=faults,
                paths=paths,
                extra_args=extra_args,
                hypothesis_profile=hypothesis_profile,
                out=out,
            )
        except KeyboardInterrupt:
            reason = f"interrupted by {seen.name}"
            if (reports_dir / _RUN_MARK).exists():  # pytest had started: its reports are partial
                mark_incomplete(reports_dir, reason)
                _say(
                    f"{reason}: pytest and the central were stopped; the reports in {reports_dir} are"
                    " marked incomplete",
                    out,
                )
            else:
                _say(f"{reason} before any check ran; what it had started was stopped", out)
            return EXIT_INTERRUPTED


def _run(
    target: str | None,
    reports: str = "reports",
    *,
    faults: Sequence[str] = (),
    paths: Sequence[str] | None = None,
    extra_args: Sequence[str] = (),
    hypothesis_profile: str = "ci",
    out: TextIO,
) -> int:
    try:
        validate_profile(hypothesis_profile)
    except ValueError as exc:
        _say(str(exc), out)
        return EXIT_USAGE
    if target is not None and faults:
        _say("faults apply only to the embedded central, not to --target", out)
        return EXIT_USAGE
    try:
        chosen = _resolve(paths) if paths else [str(d) for d in check_dirs()]
    except FileNotFoundError as exc:
        _say(str(exc), out)
        return EXIT_USAGE
    reports_dir = Path(reports)
    with ExitStack() as stack:
        try:
            if target is not None:
                loaded = load_target(target)
                target_file = str(Path(target).resolve())
            else:
                loaded, target_file = start_central(stack, list(faults))
        except TargetError as exc:
            _say(str(exc), out)
            return EXIT_USAGE
        except ValueError as exc:  # an unknown fault name
            _say(str(exc), out)
            return EXIT_USAGE
        except PbxcheckError as exc:
            _say(str(exc).splitlines()[0], out)
            return EXIT_FAILED
        redactor = Redactor(loaded.secrets)
        reports_dir.mkdir(parents=True, exist_ok=True)
        for stale in (report.CLAUSES_JSON, report.CLAUSES_MD, "junit.xml", "certificate.html", "run-info.json"):
            (reports_dir / stale).unlink(missing_ok=True)
        failures = reports_dir / report.FAILURES_DIR
        if failures.is_dir():
            for f in failures.iterdir():
                f.unlink()
        if target is not None:
            problems = _unreachable(loaded)
            subset = bool(paths) or "-k" in extra_args
            for line in problems:
                _say(("warning: " if subset else "") + line, out)
            if problems and not subset:
                _say(f"{len(problems)} setup problem(s) in {target}: no clause was checked", out)
                return EXIT_USAGE
            if problems:  # a chosen subset (a SIP-only target, say) may not need what is missing
                _say(f"{len(problems)} setup problem(s) in {target}: running the chosen checks anyway", out)
        cmd = pytest_command(
            target_file, reports_dir, paths=chosen, extra_args=list(extra_args), hypothesis_profile=hypothesis_profile
        )
        # Every temp folder pytest or what it starts makes (peers' work dirs, tmp_path) lands in
        # this one, removed whatever happens; its own session lets us stop pytest's tree as a whole.
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="pbxcheck-run-"))
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", TMPDIR=tmp)
        (reports_dir / _RUN_MARK).touch()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        assert proc.stdout is not None
        stack.callback(proc.stdout.close)  # after pytest is gone (a ResourceWarning otherwise)
        shown: list[str] = []
        try:
            _stream(proc, redactor, out, shown)
            code = proc.wait()
        except BaseException:
            # A signal reached us (SIGINT, SIGTERM, SIGHUP; alone, if it came by kill): pytest must
            # stop too, then the central (the ExitStack), and the reports be redacted all the same.
            _interrupt(proc)
            report.redact_tree(reports_dir, redactor)
            raise
        report.redact_tree(reports_dir, redactor)
        (reports_dir / _RUN_MARK).unlink(missing_ok=True)
        from .certificate import write_for_run  # reports/certificate.html, scanned by the last pass below

        _say(
            write_for_run(
                reports_dir,
                loaded,
                profile=hypothesis_profile,
                faults=faults,
                embedded=target is None,
                redactor=redactor,
            ),
            out,
        )
    leaked = last_pass(reports_dir, "".join(shown), loaded, out)
    code = exit_code(code, reports_dir, out)
    return EXIT_FAILED if leaked and code == EXIT_OK else code


def _interrupt(proc: subprocess.Popen[bytes]) -> None:
    """What Ctrl-C would have done to pytest's process group (its finalizers undo BLOQUEAR and stop
    the SIP peers), then SIGKILL to the group and to anything it started if it hangs."""
    if proc.stdout is not None:  # keep reading what it prints meanwhile, or a full pipe would block it
        threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
    signals.stop_tree(proc, first=signal.SIGINT, grace=10.0)


def _drain(stream: IO[bytes]) -> None:
    with contextlib.suppress(OSError, ValueError):
        while stream.read(65536):
            pass


_RUN_MARK = ".pbxcheck-running"  # in the reports folder while pytest runs: a report there may be partial
_INCOMPLETE_MD = "**INCOMPLETE: {reason}; the checks after that point did not run.**"


def mark_incomplete(reports_dir: Path, reason: str) -> None:
    """Say in clauses.json (``incomplete``, ``incomplete_reason``) and at the top of clauses.md that
    the run was cut short; without a clauses.json (pytest stopped before writing it), a minimal one."""
    table_path = reports_dir / report.CLAUSES_JSON
    try:
        table = json.loads(table_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        table = None
    if not isinstance(table, dict):
        table = {"clauses": {}, "counts": {}}
    table["incomplete"] = True
    table["incomplete_reason"] = reason
    table_path.write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path = reports_dir / report.CLAUSES_MD
    line = _INCOMPLETE_MD.format(reason=reason)
    md = md_path.read_text(encoding="utf-8") if md_path.exists() else "# Clause report\n"
    if not md.startswith("**INCOMPLETE"):
        md_path.write_text(f"{line}\n\n{md}", encoding="utf-8")
    (reports_dir / _RUN_MARK).unlink(missing_ok=True)


def start_central(stack: ExitStack, faults: Sequence[str]) -> tuple[Target, str]:
    """The embedded reference central with ``faults`` on (validated first: ValueError names an
    unknown one), stopped when ``stack`` closes; its target and the target file it wrote.

    The one code path that starts a central for the checks: ``run`` without a target, and the
    plugin when the harness's own tests run pytest directly without --target."""
    from .central.faults import validate
    from .central.process import CentralProcess

    validate(list(faults))
    central = CentralProcess(faults=list(faults))
    loaded = stack.enter_context(central)
    return loaded, str(central.target_path)


def exit_code(pytest_code: int, reports_dir: Path, out: TextIO) -> int:
    """pytest's code read through the clause table: a failed clause is 1, usage errors are 2."""
    if pytest_code == 4:  # pytest usage error (the plugin raises UsageError for a bad target)
        return EXIT_USAGE
    table_path = reports_dir / report.CLAUSES_JSON
    if not table_path.exists():
        if pytest_code == 5:
            _say("no checks were collected", out)
            return EXIT_USAGE
        return EXIT_OK if pytest_code == 0 else EXIT_FAILED
    table = json.loads(table_path.read_text(encoding="utf-8"))
    if report.failed_clauses(table) or pytest_code != 0:
        return EXIT_FAILED
    return EXIT_OK
