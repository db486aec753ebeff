"""report.html: self-contained, complete, quick runs and reference rows marked, renders in Chromium."""

import base64
import csv
import io
import json
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from results_factory import make_pair, make_results, seeded, write_run

from seqbench.cli import main
from seqbench.reporting.html_report import REPORT_FILE, merge_runs, render_report, write_report, write_run_report
from seqbench.reporting.table_files import write_tables
from seqbench.reporting.tables import render, summary_table


def _results(quick=False):
    reference = seeded("torch-rnn", "mnist", [0.981], [17.0])
    reference[0]["model_plugin"] = "torch"
    results = make_results(seeded("rnn-cpu", "mnist", [0.985, 0.986], [14.0, 15.0]) + reference
                           + [make_pair("lstm-gpu", "mnist", status="skipped", reason="CuPy missing")])
    results["config"]["preprocessing"] = {"mnist": {"standardize": True, "hflip": False, "shift": 0}}
    if quick:
        results["config"].update(quick=True, protocol={"val_fraction": 0.1, "quick_profile": {
            "epochs": 2, "patience": 2, "max_train": 4000, "max_test": 1000}})
        for pair in results["pairs"]:
            pair["dataset_info"]["n_test"] = 1000
    return results


def _images(page):
    return re.findall(r'<img src="data:(image/[a-z+]+);base64,([A-Za-z0-9+/=]+)"', page)


@pytest.mark.slow
def test_the_page_is_self_contained_with_every_plot_inline(tmp_path):
    page = write_run_report(tmp_path, _results()).read_text()
    images = _images(page)
    # summary, curves, two confusion matrices, the pairs' heatmap, accuracy against cost
    assert [mime for mime, _ in images] == ["image/png"] * 6
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for _, data in images)
    assert "<script" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    assert not re.search(r'src="(?!data:)', page)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "accuracy_vs_cost.png", "confusion__rnn-cpu+mnist.png", "confusion__torch-rnn+mnist.png", "curves__mnist.png",
        "pairs_heatmap__mnist.png", "summary.png"]


def test_the_header_says_where_the_numbers_come_from(tmp_path):
    page = render_report([("run", _results())])
    for text in ("seqbench run --all", "0123456789abcdef0123", "AMD EPYC 7763 64-Core Processor (2 CPUs)",
                 "10% of train held out for validation", "early stopping on validation accuracy",
                 "mnist: standardised", "Python 3.11.7"):
        assert text in page, text
    for section in ("Summary", "Plots", "Hyperparameters", "Per-class metrics (test set)", "Timing"):
        assert f"<h2>{section}</h2>" in page


def test_reference_rows_carry_a_badge_and_quick_runs_a_banner(tmp_path):
    full = render_report([("run", _results())])
    assert full.count('<tr class="reference">') == 1 + 1 + 11 + 1  # summary, hyperparameters, per class, timing
    assert full.count('<span class="badge reference">reference</span>') == 14
    assert "QUICK" not in full and 'class="badge quick"' not in full
    quick = render_report([("run", _results(quick=True))])
    assert "<title>seqbench report — run — QUICK RUN — PARTIAL RUN</title>" in quick
    assert '<div class="banner">QUICK RUN: the --quick smoke profile (2 epochs, 4,000 training samples,' in quick
    assert 'class="badge quick"' in quick and "<th>test samples</th>" in quick and ">1,000<" in quick


def test_quick_runs_are_marked_in_the_tables_and_csvs(tmp_path):
    results = _results(quick=True)
    paths = write_tables(tmp_path, results)
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("**PARTIAL RUN: ") and "\n# Summary — QUICK RUN\n\n**QUICK RUN: " in summary
    for path in (p for p in paths if p.suffix == ".csv"):
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        assert rows and all(row["quick"] == "yes" for row in rows), path.name
    summary = list(csv.DictReader(io.StringIO(render(summary_table(results), "csv"))))
    assert summary[0]["test_samples"] == "1000" and summary[2]["test_samples"] == ""  # the skipped row
    assert "quick" not in render(summary_table(_results()), "csv").splitlines()[0]


@pytest.mark.slow
def test_plot_formats(tmp_path):
    runs = [("run", make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0])))]
    svg = write_report(tmp_path / "svg", runs, "svg").read_text()
    assert {mime for mime, _ in _images(svg)} == {"image/svg+xml"}
    assert (tmp_path / "svg" / "plots" / "summary.svg").read_bytes().startswith(b"<?xml")
    pdf = write_report(tmp_path / "pdf", runs, "pdf").read_text()
    assert {mime for mime, _ in _images(pdf)} == {"image/png"}  # browsers do not show PDF in <img>
    assert (tmp_path / "pdf" / "plots" / "summary.pdf").read_bytes().startswith(b"%PDF")
    bare = write_report(tmp_path / "none", runs, None).read_text()
    assert not _images(bare) and not (tmp_path / "none" / "plots").exists() and "No plots" in bare


def test_several_runs_merge_with_a_run_column_and_models_named_by_run():
    a, b = _results(), make_results(seeded("rnn-cpu", "mnist", [0.97], [9.0]))
    merged = merge_runs([("a", a), ("b", b)])
    assert sorted({p["model"] for p in merged["pairs"]}) == ["lstm-gpu", "rnn-cpu [a]", "rnn-cpu [b]", "torch-rnn"]
    page = render_report([("a", a), ("b", b)])
    assert (
        "<title>seqbench report — 2 runs — PARTIAL RUN</title>" in page
        and "<h3>a</h3>" in page
        and "<h3>b</h3>" in page
    )
    assert page.count("<th>run</th>") == 4


def _snapshot(directory):
    return {p.relative_to(directory): (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.rglob("*")
            if p.is_file()}


@pytest.mark.slow
def test_report_out_writes_one_page_and_never_into_its_inputs(tmp_path):
    first = write_run(tmp_path / "first", _results())
    second = write_run(tmp_path / "second", _results(quick=True))
    before = {d: _snapshot(d) for d in (first, second)}
    result = CliRunner().invoke(main, ["report", str(first), str(second), "--out", str(tmp_path / "out"),
                                       "--plot-format", "svg", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert {d: _snapshot(d) for d in (first, second)} == before
    assert [row["run"] for row in json.loads(result.stdout)["summary"]] == ["first"] * 3 + ["second"] * 3
    page = (tmp_path / "out" / REPORT_FILE).read_text()
    assert "QUICK RUN" in page and (tmp_path / "out" / "plots" / "summary.svg").exists()
    inside = CliRunner().invoke(main, ["report", str(first), "--out", str(first / "sub")])
    assert inside.exit_code == 2 and "inside the input" in inside.output
    assert _snapshot(first) == before[first]


def test_report_without_out_redraws_the_page_in_the_run(tmp_path):
    run = write_run(tmp_path / "run", _results())
    result = CliRunner().invoke(main, ["report", str(run), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "Per-class metrics" in (run / REPORT_FILE).read_text() and not (run / "plots").exists()


# --- in a browser ----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

#: Injected into a copy of the page: records console errors and failed loads, then, once the page
#: has loaded, writes the number of images and those that did not load into the DOM.
PROBE = """<script>
window.__errors = [];
const __error = console.error;
console.error = (...args) => { window.__errors.push(args.join(" ")); __error(...args); };
window.addEventListener("error",
                        e => window.__errors.push(e.message || "failed to load " + (e.target.tagName || "")), true);
window.addEventListener("load", () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const out = document.createElement("pre");
  out.id = "seqbench-probe";
  out.textContent = JSON.stringify({images: images.length, broken, errors: window.__errors,
                                    width: document.documentElement.scrollWidth});
  document.body.appendChild(out);
});
</script>"""


def _chromium(*args, timeout=120):
    return subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
                           "--v=0", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_the_page_renders_in_headless_chromium_with_every_image_and_no_console_error(tmp_path):
    page = write_run_report(tmp_path / "run", _results(quick=True)).read_text()
    assert page.count("<img ") == 6
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    out = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="seqbench-probe">(.*?)</pre>', out.stdout)
    assert found, out.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe == {"images": 6, "broken": [], "errors": [], "width": probe["width"]}
    # The page itself (no probe) logs nothing to the console
    plain = _chromium("--virtual-time-budget=5000", "--dump-dom", (tmp_path / "run" / REPORT_FILE).as_uri())
    assert "seqbench report" in plain.stdout
    assert not [line for line in plain.stderr.splitlines() if ":CONSOLE" in line]
