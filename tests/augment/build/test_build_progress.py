"""A build reports its progress as a log line at the end, not a line per batch."""

from __future__ import annotations


def test_a_build_logs_one_closing_line_not_one_per_batch(tmp_path, augmenter, capsys):
    from augment.build.build import build
    from augment.build.executors import SerialExecutor
    from augment.build.spec import BuildSpec
    from augment.io.readers import columns_for

    src = tmp_path / "in.tsv"
    rows = "".join(f"the quiet film number {i} moves slowly\t{i % 2}\n" for i in range(40))
    src.write_text("sentence\tlabel\n" + rows)
    spec = BuildSpec(
        input=str(src),
        output=tmp_path / "out",
        config=augmenter.config.model_copy(update={"batch_size": 2}),
        columns=columns_for("sst2"),
        task="sst2",
        shard_size=5,
    )
    build(spec, executor=SerialExecutor(spec.config, augmenter))
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("augment:")]
    assert len(err) <= 2, err  # 20 batches, 8 shards: a closing line (and one if it took 15 s)
    assert err[-1].startswith("augment: done 40/40 rows (100%)") and "shards=8" in err[-1]
