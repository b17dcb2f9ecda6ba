"""Service settings from the environment, `kdaug serve` flags and errors, logging format."""

from __future__ import annotations

import json
import logging

import pytest

from augment.cli import build_parser, main
from augment.errors import KdaugError
from service.cli import load_settings
from service.logs import JsonFormatter
from service.settings import ServiceSettings
from service.state import augment_config


def test_environment_settings_with_prefix(monkeypatch):
    monkeypatch.setenv("KDAUG_API_KEYS", " key-one, key-two ,")
    monkeypatch.setenv("KDAUG_CORS_ORIGINS", "https://a.example")
    monkeypatch.setenv("KDAUG_MICRO_BATCHING", "false")
    monkeypatch.setenv("KDAUG_MAX_ITEMS", "5")
    monkeypatch.setenv("KDAUG_MLM", "none")
    s = ServiceSettings()
    assert s.api_keys == ["key-one", "key-two"]
    assert s.cors_origins == ["https://a.example"]
    assert (s.micro_batching, s.max_items, s.mlm) == (False, 5, "none")
    monkeypatch.setenv("KDAUG_API_KEYS", "")
    assert ServiceSettings().api_keys == []


def test_flags_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("KDAUG_DEVICE", "cuda")
    monkeypatch.setenv("KDAUG_MLM", "from-env")
    args = build_parser().parse_args(["serve", "--device", "cpu", "--no-micro-batching"])
    s = load_settings(args)
    assert (s.device, s.mlm, s.micro_batching) == ("cpu", "from-env", False)


def test_bad_environment_values_are_one_line_errors(monkeypatch):
    monkeypatch.setenv("KDAUG_MAX_ITEMS", "0")
    with pytest.raises(KdaugError, match="KDAUG_MAX_ITEMS"):
        load_settings(build_parser().parse_args(["serve"]))


def test_serve_fails_before_binding_when_a_model_is_unusable(tmp_path, capsys):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    code = main(["serve", "--mlm", str(folder), "--port", "9"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("kdaug: error:") and "not-a-model" in err and "\n" not in err


def test_yaml_augment_settings_under_explicit_service_settings(tmp_path):
    path = tmp_path / "augment.yaml"
    path.write_text("top_k: 7\nmlm: from-yaml\nvectors: none\n", encoding="utf-8")
    cfg = augment_config(ServiceSettings(augment_config=path, vectors="glove-6b-50d"))
    assert (cfg.top_k, cfg.mlm, cfg.vectors) == (7, "from-yaml", "glove-6b-50d")
    assert cfg.batch_size == ServiceSettings().batch_max_records


def test_json_log_lines():
    record = logging.LogRecord("kdaug", logging.INFO, __file__, 1, "ready in %d s", (3,), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "ready in 3 s" and line["level"] == "info"
