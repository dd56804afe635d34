"""Execute notebooks/quickstart.ipynb and notebooks/tables.ipynb with tiny settings (nbclient).

The quickstart trains a tiny run into a module-scoped temporary folder; the tables notebook then
reads that finished run. Parameters are injected papermill-style: a cell placed right after the
cell tagged ``parameters`` overrides its values.
"""

from __future__ import annotations

import base64
import csv
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupyter_client = pytest.importorskip("jupyter_client")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "python3"
TINY_ITERATIONS = 4


def _ensure_kernel() -> None:
    """Register the ipykernel of this interpreter only if no ``python3`` kernel exists."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True)


def _inject(notebook: Any, values: dict[str, Any]) -> None:
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "a notebook must have exactly one cell tagged 'parameters'"
    defaults: dict[str, Any] = {}
    exec(notebook.cells[tagged[0]].source, {}, defaults)  # noqa: S102 (our own notebook's cell)
    unknown = set(values) - set(defaults)
    assert not unknown, f"not parameters of the notebook: {unknown}"
    source = "# injected by tests/test_notebooks.py\n" + "\n".join(
        f"{name} = {value!r}" for name, value in values.items()
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(tagged[0] + 1, cell)


def execute(name: str, values: dict[str, Any], folder: Path = NOTEBOOKS) -> Any:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        f"{name} is stored with outputs; clear them before committing"
    )
    _inject(notebook, values)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=240,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return notebook


def outputs(notebook: Any, mime: str) -> list[str]:
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") in ("display_data", "execute_result") and mime in output.get("data", {}):
                found.append(output["data"][mime])
            elif mime == "text/plain" and output.get("output_type") == "stream":
                found.append(output["text"])
    return found


def check_all_cells_ran(notebook: Any) -> None:
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(isinstance(c.execution_count, int) for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Any:
    _ensure_kernel()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        patch.setenv("OMP_NUM_THREADS", "1")  # tiny networks: one thread is fastest and stable
        yield tmp_path_factory.mktemp("notebooks")


@pytest.fixture(scope="module")
def quickstart(environment: Path) -> tuple[Any, Path]:
    runs = environment / "runs"
    notebook = execute(
        "quickstart.ipynb",
        {"GENERATOR_ITERATIONS": TINY_ITERATIONS, "RUN_NAME": "tiny-quickstart",
         "RUNS_DIR": str(runs), "TINY": True, "WANDB": False},
    )
    return notebook, runs / "tiny-quickstart"


def test_quickstart_trains_and_shows_the_grid_and_the_losses(quickstart: tuple[Any, Path]) -> None:
    notebook, run_dir = quickstart
    check_all_cells_ran(notebook)
    # The run finished: checkpoint, grid, CSV log with one loss row per generator iteration.
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    latest = run_dir / "samples" / "latest.png"
    assert latest.is_file()
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("loss_d")]
    assert [int(float(r["generator_iteration"])) for r in rows] == list(range(1, TINY_ITERATIONS + 1))
    # Shown: the grid itself (the very bytes of latest.png), the loss plot and the evaluation plot.
    images = outputs(notebook, "image/png")
    assert base64.b64decode(images[0]) == latest.read_bytes()
    assert len(images) == 3
    text = "".join(outputs(notebook, "text/plain"))
    assert f"trained {TINY_ITERATIONS} generator iterations" in text
    assert "last logged window: loss_d = " in text


def test_quickstart_shows_an_existing_run_instead_of_overwriting_it(
    quickstart: tuple[Any, Path],
) -> None:
    _, run_dir = quickstart
    before = (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    notebook = execute(
        "quickstart.ipynb",
        {"GENERATOR_ITERATIONS": TINY_ITERATIONS, "RUN_NAME": run_dir.name,
         "RUNS_DIR": str(run_dir.parent), "TINY": True, "WANDB": False},
    )
    check_all_cells_ran(notebook)
    assert "already exists: showing that run" in "".join(outputs(notebook, "text/plain"))
    assert (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before


def test_tables_show_the_paper_rows_and_the_report_of_the_finished_run_from_any_folder(
    quickstart: tuple[Any, Path], tmp_path: Path,
) -> None:
    _, run_dir = quickstart
    elsewhere = tmp_path / "outside-the-clone"  # the kernel starts here, not in notebooks/
    elsewhere.mkdir()
    notebook = execute("tables.ipynb", {"RUNS_DIR": str(run_dir.parent), "TABLES": None}, folder=elsewhere)
    check_all_cells_ran(notebook)
    markdown = "\n".join(outputs(notebook, "text/markdown"))
    # Table 5's DCGAN row: the paper's values beside ours, both matching.
    dcgan = next(line for line in markdown.splitlines() if line.startswith("| DCGANs |"))
    cells = [c.strip() for c in dcgan.strip("|").split("|")]
    assert cells[:9] == ["DCGANs", "CIFAR-10", "dcgan_32", "4.34M", "4.34M", "yes", "309.24M",
                         "309.24M", "yes"]
    assert "iGAN report, Table 2" in markdown and "GIU-GANs, Table 8" in markdown
    # The tiny run through `giugan report`'s API: its row (one seed, the iterations it reached,
    # its protocol with the stand-in extractor), the row's plot and the losses (Figure 10).
    from giugan.reporting import gather
    from giugan.reporting import markdown as report_markdown

    assert report_markdown(gather([run_dir.parent])) in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| row | paper (table, row) |"))
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {run_dir.name} |"))
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))
    assert cells["generator iterations"] == str(TINY_ITERATIONS) and cells["seeds"].startswith("1 (")
    assert cells["protocol"] == "P1" and '"extractor": "standin"' in markdown
    assert len(outputs(notebook, "image/png")) == 2
    assert "No run under" not in markdown


def test_tables_say_plainly_when_no_run_has_metrics(environment: Path) -> None:
    empty = environment / "empty-runs"
    empty.mkdir()
    notebook = execute("tables.ipynb", {"RUNS_DIR": str(empty), "TABLES": ["5"]}, folder=environment)
    check_all_cells_ran(notebook)
    markdown = "\n".join(outputs(notebook, "text/markdown"))
    assert "**No run under" in markdown and "has metrics**" in markdown
    assert "| DCGANs |" in markdown
    assert not outputs(notebook, "image/png")


def test_a_relative_runs_dir_is_found_in_a_folder_above_the_notebooks_own(
    quickstart: tuple[Any, Path], tmp_path: Path,
) -> None:
    _, run_dir = quickstart
    project = tmp_path / "project"
    shutil.copytree(run_dir, project / "runs" / run_dir.name)
    (project / "notebooks").mkdir()
    notebook = execute("tables.ipynb", {"RUNS_DIR": "runs", "TABLES": ["7"]}, folder=project / "notebooks")
    check_all_cells_ran(notebook)
    assert f"{project / 'runs'}: 1 run folder(s), 1 table row(s)" in "".join(outputs(notebook, "text/plain"))
    assert f"| {run_dir.name} |" in "\n".join(outputs(notebook, "text/markdown"))
