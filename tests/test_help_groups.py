"""``--help`` says what each experiment is and how long it takes, from the experiment file's
summary line (``# <what it is> (<time> on a 2-core CPU)``, first after ``@package``)."""

from __future__ import annotations

import re
from pathlib import Path

from facectx._conf import command_help, config_dir, summary_line

EXPERIMENTS = sorted((Path(config_dir()) / "experiment").glob("*.yaml"))


def test_every_experiment_file_has_a_summary_line_with_its_cpu_time():
    assert EXPERIMENTS
    for path in EXPERIMENTS:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "# @package _global_", path.name
        assert re.fullmatch(r"# .+ \([^()]*on a 2-core CPU[^()]*\)", lines[1]), (
            path.name,
            lines[1],
        )
        assert summary_line(path) == lines[1][2:]


def test_train_help_lists_every_experiment_with_its_description_and_time():
    text = command_help("train", module_name="facectx.train")
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("    ")}
    for path in EXPERIMENTS:
        assert path.stem in rows, (path.stem, text)
        assert rows[path.stem].split(None, 1)[1] == summary_line(path)


def test_groups_without_summary_lines_stay_one_line():
    text = command_help("train", module_name="facectx.train")
    assert "  mask: center, facial, [hull], irregular, mixed, ocular" in text
