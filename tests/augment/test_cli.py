import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from kdaug.cli import main


def _sst(tmp_path, rows):
    f = tmp_path / "in.tsv"
    f.write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
    return f


def test_augment_end_to_end(tmp_path, tiny_mlm_dir, capsys):
    rows = [
        ("the acting is brilliant and the story moves quickly .", 1),
        ("", 0),
        ("a dull , lifeless and painfully slow film .", 0),
        ('he said "wonderful" twice .', 1),
    ]
    out = tmp_path / "out"
    code = main(
        [
            "augment",
            str(_sst(tmp_path, rows)),
            "-o",
            str(out),
            "--task",
            "sst2",
            "--mlm",
            str(tiny_mlm_dir),
            "--n",
            "4",
            "--batch-size",
            "2",
        ]
    )
    assert code == 0
    table = pq.read_table(out / "data" / "part-00000.parquet")
    names = table.column_names
    assert names[:3] == ["id", "variant", "text_a"] and {"label", "replacements"} <= set(names)
    assert "text_b" not in names  # a single-sentence task, as datasets' GLUE sst2 config
    data = table.to_pylist()
    assert {r["id"] for r in data} == {"0", "2", "3"}
    assert sum(r["variant"] == 0 for r in data) == 3 and len(data) > 3
    rejects = (out / "rejects" / "part-00000.jsonl").read_text().splitlines()
    assert len(rejects) == 1 and json.loads(rejects[0])["row"] == 1
    stats = json.loads((out / "stats.json").read_text())
    assert stats["rows_in"] == 4 == stats["records"] + stats["rows_rejected"]
    assert "4 rows in = 3 records + 1 rejected" in capsys.readouterr().out


def test_existing_output_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("keep")
    code = main(["augment", str(_sst(tmp_path, [("a b", 1)])), "-o", str(out), "--mlm", "none"])
    assert code == 1 and "--overwrite" in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path):
    """One `kdaug: error:` line each: exit status 1 when the command cannot do its work, 2 when
    the command line is wrong."""
    tsv = str(_sst(tmp_path, [("a b", 1)]))
    cases = [
        (1, ["augment", str(tmp_path / "missing.tsv"), "-o", str(tmp_path / "o"), "--mlm", "none"]),
        (1, ["augment", tsv, "-o", str(tmp_path / "o2"), "--mlm", str(tmp_path / "no-such-model")]),
        (2, ["augment", tsv, "-o", str(tmp_path / "o3"), "--p", "2"]),
        (1, ["sample", "hello world", "--tagger", "xx_no_such_pipeline", "--mlm", "none"]),
    ]
    for status, argv in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "kdaug.cli", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == status, proc.stderr
        errors = [x for x in proc.stderr.splitlines() if x.startswith("kdaug: error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_sample_prints_variants(tiny_mlm_dir, capsys):
    code = main(
        [
            "sample",
            "The quiet village slowly disappeared under heavy snow.",
            "--mlm",
            str(tiny_mlm_dir),
            "--n",
            "3",
            "--no-color",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0].strip().startswith("0  The quiet village")
    assert len(out) >= 2 and "|" in out[1]


def _subcommand(name):
    from kdaug.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices[name]


def test_flag_help_states_the_config_defaults():
    import re

    from augment.config import AugmentConfig
    from kdaug.cli.augment import CONFIG_FLAGS

    actions = {a.dest: a for a in _subcommand("augment")._actions}
    for name in CONFIG_FLAGS:
        default = AugmentConfig.model_fields[name].get_default(call_default_factory=True)
        (shown,) = re.findall(r"\(default ([^)]*)\)", actions[name].help)
        assert shown == (",".join(default) if isinstance(default, list) else str(default)), name
    assert "(default 256)" in actions["batch_size"].help
    assert AugmentConfig().batch_size == 256
    assert "(default mlm,vectors)" in actions["sources"].help
    sample = {a.dest: a for a in _subcommand("sample")._actions}
    assert "(default 5)" in sample["n"].help  # what `kdaug sample` prints


def test_config_flags_are_taken_as_the_config_declares_them():
    """Each flag's help, type and choices are AugmentConfig's declaration of its setting."""
    from typing import get_args

    from augment.config import AugmentConfig
    from kdaug.cli.augment import CONFIG_FLAGS

    actions = {a.dest: a for a in _subcommand("augment")._actions}
    for name in CONFIG_FLAGS:
        field = AugmentConfig.model_fields[name]
        assert actions[name].help.startswith(field.description), name
        if field.annotation in (int, float):
            assert actions[name].type is field.annotation, name
        choices = get_args(field.annotation)
        if choices and isinstance(choices[0], str):
            assert actions[name].choices == list(choices), name
    assert actions["sources"].type("vectors, wordnet") == ["vectors", "wordnet"]
    assert "comma-separated" in actions["sources"].help


def test_workers_takes_auto_or_a_positive_number(capsys):
    parser = _subcommand("augment")
    assert parser.parse_args(["in.tsv", "-o", "o"]).workers == "auto"
    assert parser.parse_args(["in.tsv", "-o", "o", "--workers", "AUTO"]).workers == "auto"
    assert parser.parse_args(["in.tsv", "-o", "o", "--workers", "3"]).workers == 3
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["in.tsv", "-o", "o", "--workers", bad])
        assert "argument --workers" in capsys.readouterr().err


def test_augment_logs_the_workers_auto_choice(tmp_path, capsys, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="augment.build"):
        code = main(
            ["augment", str(_sst(tmp_path, [("a quiet film", 1)])), "-o", str(tmp_path / "o")]
            + ["--task", "sst2", "--mlm", "none", "--device", "cpu"]
        )
    assert code == 0
    assert "workers auto: 1 process x" in caplog.text and "1 shard to do" in caplog.text


# user data printed to a terminal -----------------------------------------------------------
TITLE, CLEAR, RLO = "\x1b]0;owned\x07", "\x1b[2J", "\u202e"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def _escaped(text: str) -> bool:
    return not any(c in text for c in RAW)


def test_inspect_escapes_control_characters_in_user_data(tmp_path, tiny_mlm_dir, capsys):
    src = tmp_path / f"in{CLEAR}.jsonl"
    rows = [
        {
            "id": f"r{i}{TITLE}",
            "text": f"the {CLEAR}film is good and the {RLO}story moves",
            "y": f"p{CLEAR}",
        }
        for i in range(3)
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    argv = ["augment", str(src), "-o", str(out), "--text-column", "text", "--label-column", "y"]
    argv += ["--id-column", "id", "--mlm", str(tiny_mlm_dir), "--vectors", "none", "--n", "2"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "--samples", "3"]) == 0
    shown = capsys.readouterr().out
    assert _escaped(shown), shown
    assert "in\\x1b[2J.jsonl" in shown and "\\x1b]0;owned\\x07" in shown
    assert "p\\x1b[2J" in shown and "\\u202e" in shown


def test_sample_escapes_control_characters(tiny_mlm_dir, capsys):
    text = f"the {CLEAR}quiet village {TITLE} slowly {RLO}disappeared under snow ."
    argv = ["sample", text, "--text-b", f"a {TITLE} b", "--mlm", str(tiny_mlm_dir), "--n", "2"]
    assert main([*argv, "--vectors", "none"]) == 0
    shown = capsys.readouterr().out
    assert _escaped(shown), shown
    assert shown.splitlines()[0].strip() == (
        "0  the \\x1b[2Jquiet village \\x1b]0;owned\\x07 slowly \\u202edisappeared under snow .  "
        "||  a \\x1b]0;owned\\x07 b"
    )


def test_error_lines_escape_control_characters(tmp_path, capsys):
    missing = tmp_path / f"missing{TITLE}.tsv"
    assert main(["augment", str(missing), "-o", str(tmp_path / "o"), "--mlm", "none"]) != 0
    err = capsys.readouterr().err
    assert _escaped(err) and "missing\\x1b]0;owned\\x07.tsv" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["inspect", str(tmp_path), f"--bogus{CLEAR}"])
    err = capsys.readouterr().err
    assert _escaped(err) and "--bogus\\x1b[2J" in err


def test_augment_and_export_escape_control_characters_in_paths(tmp_path, capsys):
    out = tmp_path / f"out{CLEAR}"
    argv = ["augment", str(_sst(tmp_path, [("a quiet film", 1)])), "-o", str(out)]
    assert main([*argv, "--task", "sst2", "--mlm", "none", "--device", "cpu"]) == 0
    assert main([*argv, "--task", "sst2", "--mlm", "none", "--device", "cpu"]) == 0  # verified
    assert main(["export", str(out), "-o", str(tmp_path / f"x{TITLE}.tsv")]) == 0
    shown = capsys.readouterr()
    assert _escaped(shown.out + shown.err), shown
    assert shown.out.count("out\\x1b[2J") == 2 and "x\\x1b]0;owned\\x07.tsv" in shown.out


def test_teacher_logits_prints_its_cache_path_escaped(tmp_path, monkeypatch, capsys):
    import distill.pipeline

    where = tmp_path / f"cache{TITLE}"
    monkeypatch.setattr(distill.pipeline, "cache_teacher_logits", lambda *args: where)
    argv = ["teacher-logits", str(tmp_path), "--teacher", str(tmp_path), "--task", "sst2"]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert _escaped(shown) and shown.strip().endswith("cache\\x1b]0;owned\\x07"), shown


def test_rejects_are_safe_to_print_and_read_back_exactly(tmp_path):
    hostile = f"r{RLO}\x9b31m\x7f\u2028{TITLE}"
    src = tmp_path / "in.jsonl"
    rows = [{"id": hostile, "text": "   ", "y": hostile}, {"id": "ok", "text": "a quiet film"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    argv = ["augment", str(src), "-o", str(out), "--text-column", "text", "--label-column", "y"]
    assert main([*argv, "--id-column", "id", "--mlm", "none", "--device", "cpu"]) == 0
    text = (out / "rejects" / "part-00000.jsonl").read_text(encoding="utf-8")
    assert _escaped(text) and "\u2028" not in text and "\x7f" not in text, text
    (reject,) = [json.loads(line) for line in text.splitlines()]
    assert reject["id"] == hostile and reject["raw"]["y"] == hostile
