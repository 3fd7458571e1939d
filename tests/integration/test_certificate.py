"""The certificate in a browser: Debian's headless Chromium loads reports/certificate.html of a run
with one fault on, of a clean run, and of a run that leaves clauses unchecked; the test reads the
rendered page (the failed clause first, the banner, every clause ID of clauses.json) and keeps a
screenshot under the run's reports folder, ``reports/certificate-browser-test/<run>/certificate.png``
at the top of the tree (CI keeps it). The faulty run's reproduction is pasted into a shell against
the still-running central and shows the fault.

Chromium missing: a skip locally, a failure under ``CI=true`` (.ci/run installs the package).
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcheck import certificate, report, runner
from pbxcheck.central.process import CentralProcess
from pbxcheck.target import Target, load_target

REPORTS = Path(__file__).resolve().parents[2] / "reports" / "certificate-browser-test"
SECTION = re.compile(r'<section class="clause s-([a-z-]+)(?: compact)?" id="clause-([A-Za-z0-9-]+)"')


def require_chromium() -> str:
    path = certificate.find_chromium()
    if path:
        return path
    msg = "chromium not found (Debian package 'chromium'; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg}: under CI=true a missing browser is a failure", pytrace=False)
    pytest.skip(msg)


def run_into(name: str, target: Path, paths: list[str] | None) -> tuple[int, Path]:
    folder = REPORTS / name
    shutil.rmtree(folder, ignore_errors=True)
    out = io.StringIO()
    code = runner.run(str(target), str(folder), paths=paths, out=out)
    assert (folder / certificate.CERTIFICATE_HTML).exists(), out.getvalue()[-3000:]
    assert "certificate: " in out.getvalue()
    return code, folder


def rendered(folder: Path) -> str:
    """The page's DOM after Chromium rendered it; a screenshot beside it."""
    require_chromium()
    uri = (folder / certificate.CERTIFICATE_HTML).resolve().as_uri()
    dom = certificate.run_chromium("--dump-dom", uri)
    assert dom.returncode == 0 and "</html>" in dom.stdout, dom.stderr[-2000:]
    shot = folder / "certificate.png"
    done = certificate.run_chromium(
        f"--screenshot={shot.resolve()}", "--window-size=1280,2000", "--hide-scrollbars", uri
    )
    assert shot.exists() and shot.stat().st_size > 10_000, done.stderr[-2000:]
    return dom.stdout


def banner(dom: str) -> str:
    m = re.search(r'<div id="verdict"[^>]*>(.*?)</div>', dom, re.S)
    assert m, "no verdict banner"
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip()


def clause_ids(folder: Path) -> list[str]:
    return list(json.loads((folder / report.CLAUSES_JSON).read_text(encoding="utf-8"))["clauses"])


def no_secret(folder: Path, target: Target) -> None:
    assert report.find_secrets(folder, target.secrets) == []


@pytest.fixture(scope="module")
def faulty() -> Iterator[tuple[int, Path, str, Target]]:
    """A central with c2c-wrong-status, the click-to-call suite run against it; the reproduction
    taken from the rendered page is run while the central still answers."""
    central = CentralProcess(faults=["c2c-wrong-status"])
    with central:
        target_path = central.target_path
        code, folder = run_into("faulty", target_path, ["test_clicktocall.py"])
        dom = rendered(folder)
        yield code, folder, dom, load_target(target_path)


@pytest.fixture(scope="module")
def clean_central() -> Iterator[Path]:
    central = CentralProcess()
    with central:
        yield central.target_path


def test_faulty_run_certificate_puts_the_failed_clause_first(faulty: tuple[int, Path, str, Target]) -> None:
    code, folder, dom, target = faulty
    assert code == runner.EXIT_FAILED
    sections = SECTION.findall(dom)
    assert sections[0] == ("failed", "C2C-1"), sections[:3]
    assert banner(dom) == "Does not conform: 1 clause failed (C2C-1)"
    assert {cid for _, cid in sections} == set(clause_ids(folder))
    first = dom.split('id="clause-C2C-1"', 1)[1].split("</section>", 1)[0]
    # two checks, the same failure: one line, with its failure files linked relatively
    assert first.count('class="fail-line"') == 1
    assert 'href="failures/' in first and str(folder) not in dom
    no_secret(folder, target)


def test_faulty_run_reproduction_works(faulty: tuple[int, Path, str, Target]) -> None:
    _, _, dom, target = faulty
    # the module's central is still up: the fixture yields inside its with-block
    m = re.search(r'<pre class="repro">(.*?)</pre>', dom, re.S)
    assert m, "no reproduction on the page"
    curl = html.unescape(m.group(1)).splitlines()[0]
    assert curl.startswith("curl ") and "$PBX_SENHA" in curl
    env = dict(os.environ, PBX_SENHA=target.senha, PBX_TOKEN=target.token)
    done = subprocess.run(["bash", "-c", curl], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert "CHAMADA EFETUADA" in done.stdout, (done.stdout, done.stderr)


def test_pdf(faulty: tuple[int, Path, str, Target]) -> None:
    _, folder, _, _ = faulty
    require_chromium()
    pdf = certificate.print_pdf(folder / certificate.CERTIFICATE_HTML, folder / certificate.CERTIFICATE_PDF)
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_partial_run_says_incomplete(clean_central: Path) -> None:
    code, folder = run_into("incomplete", clean_central, ["test_clicktocall.py"])
    assert code == runner.EXIT_OK
    dom = rendered(folder)
    table = json.loads((folder / report.CLAUSES_JSON).read_text(encoding="utf-8"))
    unchecked = report.not_checked(table)
    assert unchecked
    assert banner(dom).startswith(f"Incomplete: {len(unchecked)} clauses not checked")
    sections = SECTION.findall(dom)
    assert {cid for _, cid in sections} == set(clause_ids(folder))
    assert sections[-1][0] in report.NOT_CHECKED and sections[0][0] not in report.NOT_CHECKED


def test_clean_run_says_conforms(clean_central: Path) -> None:
    code, folder = run_into("clean", clean_central, None)
    assert code == runner.EXIT_OK
    dom = rendered(folder)
    assert banner(dom).startswith("Conforms: all ")
    sections = SECTION.findall(dom)
    assert {cid for _, cid in sections} == set(clause_ids(folder))
    assert "failed" not in {s for s, _ in sections}
    no_secret(folder, load_target(clean_central))
