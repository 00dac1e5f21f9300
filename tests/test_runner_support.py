"""Tiny notebooks and engagements shared by the runner and CLI tests (no tests here).

The stage notebooks here stand in for the real ones: each has a cell tagged
``parameters`` and writes a small artifact into the run folder, so a run of
all three takes a few seconds.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat

from relmap_utils.stages import Stage


def write_notebook(path: Path, cells: list[str], *, tag_first: bool = True) -> Path:
    """Write a Python notebook whose first cell is tagged ``parameters`` (unless ``tag_first`` is False)."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for index, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(textwrap.dedent(source).strip() + "\n")
        if index == 0 and tag_first:
            cell.metadata["tags"] = ["parameters"]
        notebook.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


STAGE_A_CELLS = [
    """
    run_dir = ""  # str: run folder, set by the runner
    as_of = "2000-01-01"
    codes = ["0000"]
    limits = {}
    cutoff = 600
    title = "默认标题"
    """,
    """
    import json
    from pathlib import Path

    seen = {name: {"type": type(value).__name__, "value": value}
            for name, value in [("as_of", as_of), ("codes", codes), ("limits", limits),
                                ("cutoff", cutoff), ("title", title)]}
    folder = Path(run_dir) / "artifacts" / "00_a"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params_seen.json").write_text(json.dumps(seen, ensure_ascii=False), encoding="utf-8")
    (Path(run_dir) / "reports" / "00_a.txt").write_text(title, encoding="utf-8")
    print(title)
    """,
]

STAGE_B_CELLS = [
    """
    run_dir = ""
    fail = False
    """,
    """
    import json
    from pathlib import Path

    seen = json.loads((Path(run_dir) / "artifacts" / "00_a" / "params_seen.json").read_text(encoding="utf-8"))
    folder = Path(run_dir) / "artifacts" / "01_b"
    folder.mkdir(parents=True, exist_ok=True)
    if fail:
        raise ValueError("planned failure")
    (folder / "result.txt").write_text(seen["title"]["value"], encoding="utf-8")
    """,
]

STAGE_C_CELLS = [
    'run_dir = ""',
    """
    from pathlib import Path

    folder = Path(run_dir) / "artifacts" / "02_c"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.txt").write_text((Path(run_dir) / "artifacts" / "01_b" / "result.txt").read_text(encoding="utf-8"))
    """,
]

KILL_CELLS = [
    'run_dir = ""',
    'print("开始加载数据")',
    """
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
    """,
    'print("never printed")',
]


def make_registry(folder: Path) -> list[Stage]:
    """Write the three tiny stage notebooks into ``folder`` and return their registry (a <- b <- c)."""
    return [
        Stage("a", "00_a", write_notebook(folder / "00_a.ipynb", STAGE_A_CELLS)),
        Stage("b", "01_b", write_notebook(folder / "01_b.ipynb", STAGE_B_CELLS), ("a",)),
        Stage("c", "02_c", write_notebook(folder / "02_c.ipynb", STAGE_C_CELLS), ("b",)),
    ]


ENGAGEMENT_YAML = """\
name: tiny
client: 测试银行
locale: {locale}
timezone: Asia/Shanghai
sources:
  - name: customers
    path: data/customers.csv
    table: customers
    columns:
      客户号: {{name: customer_id, role: identifier}}
  - name: staged
    table: accounts
    sql: select 1 as account_id
stages:
  a:
    params:
      as_of: 2023-12-31
      title: 2023年四季度 客户分群报告
"""

CUSTOMERS_CSV = "客户号,城市\n0001,上海\n0002,北京\n"


def make_engagement(folder: Path, locale: str = "zh_CN") -> Path:
    """Create a small engagement folder with one CSV source and one query source."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "customers.csv").write_text(CUSTOMERS_CSV, encoding="utf-8")
    (folder / "engagement.yaml").write_text(ENGAGEMENT_YAML.format(locale=locale), encoding="utf-8")
    return folder
