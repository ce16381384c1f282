"""The README documents what the code does: every command, JSON field and CSV column."""

from __future__ import annotations

import re
from pathlib import Path

from runlog.cli import cli
from runlog.export import FLAG_CSV_COLUMNS, RUN_CSV_COLUMNS, SAMPLE_CSV_COLUMNS, WEEK_CSV_COLUMNS
from runlog.report import FLAG_JSON_FIELDS, RUN_JSON_FIELDS
from runlog.rules import REGISTRY

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_starts_with_the_two_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    assert "runlog --store demo-store import data/sample" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert blocks[1].replace(" && .venv/bin/python -m pytest", "") in ci


def test_every_command_is_documented() -> None:
    for name, command in cli.commands.items():
        assert f"runlog {name}" in README or f"{name} " in README, name
        for sub in getattr(command, "commands", {}):
            assert sub in README, f"{name} {sub}"


def test_every_json_field_and_csv_column_is_documented() -> None:
    for name in [*RUN_JSON_FIELDS, *FLAG_JSON_FIELDS, *RUN_CSV_COLUMNS, *FLAG_CSV_COLUMNS,
                 *WEEK_CSV_COLUMNS, *SAMPLE_CSV_COLUMNS]:
        assert f"`{name}`" in README or f"{name}," in README or f" {name}" in README, name


def test_every_rule_id_is_named() -> None:
    for rule_id in REGISTRY:
        assert f"`{rule_id}`" in README, rule_id


def test_the_disclaimer_says_weights_and_cut_offs_are_uncalibrated() -> None:
    """RULES.md §8.6, as runlog's DISCLAIMER says it."""
    from runlog.report_text import DISCLAIMER

    intro = README.split("**Not medical advice.**", 1)[1].split("\n\n", 1)[0]
    assert "weights and cut-offs are uncalibrated\nheuristics" in intro
    assert "weights and cut-offs are uncalibrated heuristics" in DISCLAIMER


def test_the_rules_table_gives_every_rules_evidence_grade() -> None:
    section = README.split("### The rules", 1)[1].split("\n## ", 1)[0]
    for rule_id, info in REGISTRY.items():
        row = next(line for line in section.splitlines() if line.startswith(f"| `{rule_id}` |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == info.section and cells[3] == info.grade, rule_id
        assert cells[4] == info.source, rule_id


def test_the_rules_section_documents_the_deliberate_deviations() -> None:
    section = README.split("### The rules", 1)[1].split("\n## ", 1)[0]
    deviations = section.split("Deliberate deviations from the science brief", 1)[1]
    for rule_id, words in [("heat_index", "100 % humidity"), ("wind_chill", "4.8 km/h"),
                           ("restart", "local calendar days"), ("acwr", "EWMA"),
                           ("harder_than_usual", "median")]:
        item = next(x for x in deviations.split("\n- ") if x.startswith(f"`{rule_id}`"))
        assert words in item, rule_id
