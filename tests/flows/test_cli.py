"""The `abair` command line parses every documented command and reaches its flow."""

import subprocess
import sys

import pytest

from flows.cli import build_parser, main


@pytest.mark.parametrize("argv", [
    ["demo"], ["train", "--config", "configs/train/demo.yaml"], ["restore", "in/", "out/"],
    ["restore", "s3://b/in", "s3://b/out", "--mode", "oh", "--min-confidence", "0.6"],
    ["evaluate", "--model", "models:/abair@challenger"], ["models", "list"], ["promote"], ["rollback"],
    ["models", "retune", "--settings", "configs/estimator/retune/sharpen.yaml"],
    ["add-degradation", "jpeg"], ["add-degradation", "rain", "--replace"], ["baseline", "--config", "x.yaml"],
])
def test_documented_commands_parse(argv):
    args = build_parser().parse_args(argv)
    assert callable(args.func)


def test_restore_defaults_to_the_champion_in_sw_mode():
    args = build_parser().parse_args(["restore", "a", "b"])
    assert args.model == "models:/abair@champion" and args.mode == "sw"
    assert args.clean_weight is None  # the restore config's value (1 = as trained) unless given
    assert build_parser().parse_args(["restore", "a", "b", "--clean-weight", "3"]).clean_weight == 3.0
    assert args.tone_check is None  # the restore config's tone_check unless given
    assert build_parser().parse_args(["restore", "a", "b", "--tone-check"]).tone_check is True
    assert build_parser().parse_args(["restore", "a", "b", "--no-tone-check"]).tone_check is False


def test_models_list_on_an_empty_registry(mlflow_store, tmp_path, capsys, monkeypatch):
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"storage: {{root: '{mlflow_store.storage.root}'}}\n"
        f"mlflow: {{tracking_uri: '{mlflow_store.mlflow.tracking_uri}'}}\n"
    )
    assert main(["--pipeline", str(pipeline), "models", "list"]) == 0
    assert "no registered models" in capsys.readouterr().out


def test_console_script_help_runs():
    result = subprocess.run([sys.executable, "-m", "flows.cli", "--help"], check=False, capture_output=True, text=True)
    assert result.returncode == 0 and "add-degradation" in result.stdout
