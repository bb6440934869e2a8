"""The option declarations (server/config/options.py) against what is made from them and what
documents them: every option has a flag, a TOML key, a TREADLE_* variable and a line in the
docs, and the docs' option tables say the declared defaults."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from treadle.server.cli import build_parser, config_from_args
from treadle.server.config import Config
from treadle.server.config.files import apply_defaults, env_options
from treadle.server.config.options import OPTIONS

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TABLES = [ROOT / "README.md", ROOT / "docs" / "deployment.md"]  # the ones with a Flag | Default | Meaning table
FLAGS = {"--" + declared.key: declared for declared in OPTIONS if not declared.positional}


def _mentions(text: str, flag: str) -> bool:
    return re.search(re.escape(flag) + r"(?![\w-])", text) is not None


@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_every_option_is_documented(flag):
    assert any(_mentions(path.read_text(), flag) for path in DOCS), f"{flag} is in no doc"


def test_help_shows_every_flag_in_its_group():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "treadle", "--help"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    missing = [flag for flag in FLAGS if not _mentions(done.stdout, flag)]
    assert not missing, f"not in --help: {missing}"
    sections = re.findall(r"^(\S[^\n]*):$", done.stdout, re.MULTILINE)
    groups = [group for group in dict.fromkeys(declared.group for declared in OPTIONS) if group is not None]
    assert sections[-len(groups) :] == groups  # in declaration order, after the general options


def _table_rows() -> list[tuple[str, list[str], str]]:
    """(doc, flags, default cell) of each row of the docs' option tables."""
    rows = []
    for path in TABLES:
        for line in path.read_text().splitlines():
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]  # not at \|
            if line.startswith("| `--") and len(cells) >= 3:
                rows.append((path.name, re.findall(r"--[a-z][a-z0-9-]*", cells[0]), cells[1]))
    return rows


def _shown(default) -> str | None:
    """How the docs write a default; None when they describe it in words ("none", "best available")."""
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, float):
        return f"{default:g}"  # 5.0 as 5
    if isinstance(default, int):
        return str(default)
    if isinstance(default, tuple):
        return ",".join(default) or None
    return default or None


@pytest.mark.parametrize("doc, flags, cell", _table_rows(), ids=lambda value: str(value))
def test_the_option_tables_say_the_declared_defaults(doc, flags, cell):
    for flag in flags:
        if flag == "--config" or flag.startswith("--no-"):
            continue
        assert flag in FLAGS, f"{doc} documents {flag}, which is not an option"
        expected = _shown(FLAGS[flag].default)
        if expected is not None:
            assert expected in cell, f"{doc}: {flag}'s default is {expected}, the table says {cell}"


def test_every_option_has_a_toml_key_and_a_variable(monkeypatch):
    parser = build_parser()
    keys = {declared.key for declared in OPTIONS}
    variables = {declared.env_name: "x" for declared in OPTIONS}
    assert set(env_options(variables)) == keys
    assert "cors-allow-origin" in keys and "TREADLE_CORS_ALLOW_ORIGIN" in variables
    apply_defaults(parser, {"cors_allow_origin": ["https://a"], "ssl-cert-reqs": "required"}, "test")
    args = parser.parse_args([])
    assert (args.cors_allow_origins, args.ssl_cert_reqs) == (["https://a"], 2)


def test_the_command_line_defaults_are_configs():
    from_cli = config_from_args(build_parser().parse_args(["pkg:app"]))
    assert vars(from_cli) == vars(Config("pkg:app"))


def test_deployment_md_lists_every_option_with_its_toml_key_and_variable():
    """docs/deployment.md's "Every option" table: one row per option, each with the key a TOML
    file uses and the TREADLE_* variable, as the declarations derive them."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    table = text[text.index("## Every option") :]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) == 5 and cells[2].startswith("`"):
            rows[cells[2].strip("`")] = cells
    for declared in OPTIONS:
        assert declared.key in rows, f"--{declared.key} has no row in deployment.md's option table"
        flag_cell, _, _, variable, meaning = rows[declared.key]
        assert variable == f"`{declared.env_name}`"
        assert declared.positional or flag_cell.startswith(f"`--{declared.key}")
        assert meaning, declared.key
    assert len(rows) == len(OPTIONS)
