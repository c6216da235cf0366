"""Run configuration: embedded defaults, YAML errors with file:line, field paths, overrides, secrets, fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import RunConfig, load_config, resolve_api_key
from pipeline.errors import ConfigError
from pipeline.records import STYLES

REPO = Path(__file__).resolve().parents[1]
FAKE_KEY = "FAKE-test-key-0123456789abcdef"  # recognisable stand-in; never a real credential


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def config_error(path: Path | None = None, overrides: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        load_config(path, overrides)
    return ei.value


# --- defaults and files -----------------------------------------------------------------------------------


def test_embedded_defaults_validate_and_point_at_bundled_files() -> None:
    cfg = load_config()
    assert cfg == RunConfig()
    assert Path(cfg.policy).is_file()
    assert all(Path(s).exists() for s in cfg.seeds)
    assert [t.name for t in cfg.teachers] == ["scripted"]
    assert cfg.teachers[0].is_scripted and cfg.teachers[0].styles == list(STYLES)
    assert cfg.checker == "rules" and cfg.judge is None
    assert cfg.rewrite_teacher().name == "scripted"


def test_example_config_in_repo_validates() -> None:
    cfg = load_config(REPO / "configs" / "vllm.example.yaml")  # no API key is needed to validate
    assert [len(t.base_urls) for t in cfg.teachers] == [2, 1] and not any(t.is_scripted for t in cfg.teachers)
    assert all(u.startswith("http") and u.endswith("/v1") for t in cfg.teachers for u in t.base_urls)
    assert cfg.checker == "ensemble" and cfg.judge is not None and cfg.judge.api_key_env == "JUDGE_API_KEY"
    assert cfg.rewrite_teacher().name == cfg.teachers[0].name
    assert Path(cfg.policy).is_file() and all(Path(s).exists() for s in cfg.seeds)  # pytest runs from the repo root


def test_empty_file_is_embedded_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")).model_dump() == RunConfig().model_dump()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    err = config_error(tmp_path / "nope.yaml")
    assert err.where == str(tmp_path / "nope.yaml") and "not found" in err.message


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, "dataset: ok\nselection:\n  min_helpfulness: 5\n  preference_margin: [1, 2\nshards: {}\n")
    err = config_error(p)
    assert err.where is not None and err.where.startswith(f"{p}:")
    line = int(err.where.rsplit(":", 1)[1])
    assert 4 <= line <= 5  # the unclosed flow sequence opened on line 4
    assert "not valid YAML" in err.message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    err = config_error(write(tmp_path, "- a\n- b\n"))
    assert "mapping" in err.message


@pytest.mark.parametrize(
    ("yaml_text", "path", "words"),
    [
        ("teachers:\n  - name: t\n    sampling:\n      temperature: 3.5\n", "teachers[0].sampling.temperature", "less than or equal to 2"),
        ("teachers:\n  - name: t\n    sampling:\n      temprature: 0.5\n", "teachers[0].sampling.temprature", "unknown field"),
        ("checker: oracle\n", "checker", "'rules', 'judge' or 'ensemble'"),
        ("on_invalid_seed: ignore\n", "on_invalid_seed", "'fail' or 'skip'"),
        ("shards:\n  prompts_per_shard: 0\n", "shards.prompts_per_shard", "greater than or equal to 1"),
        ("expansion:\n  framings: [professional, sarcastic]\n", "expansion.framings[1]", "'professional'"),
        ("expansion:\n  dedup:\n    num_perm: 64\n    bands: 7\n", "expansion.dedup", "must divide"),
        ("teachers:\n  - name: t\n    styles: [helpful, sneaky]\n", "teachers[0].styles", "unknown style"),
        ("teachers:\n  - name: t\n    base_url: ftp://x/v1\n", "teachers[0].base_url", "neither 'scripted' nor an http(s) URL"),
        ("teachers:\n  - name: t\n    base_url: [scripted, 'http://a/v1']\n", "teachers[0].base_url", "cannot be mixed"),
        ("dataset: 'bad name!'\n", "dataset", "pattern"),
        ("surprise: 1\n", "surprise", "unknown field"),
    ],
)
def test_invalid_fields_are_reported_by_dotted_path(tmp_path: Path, yaml_text: str, path: str, words: str) -> None:
    p = write(tmp_path, yaml_text)
    err = config_error(p)
    assert err.where == str(p)
    lines = [ln.strip() for ln in err.message.splitlines()[1:]]
    assert any(ln.startswith(f"{path}: ") and words in ln for ln in lines), err.message
    assert err.hint


def test_every_error_is_listed_not_just_the_first(tmp_path: Path) -> None:
    err = config_error(write(tmp_path, "checker: x\nshards:\n  prompts_per_shard: -1\nselection:\n  min_helpfulness: 11\n"))
    paths = {ln.strip().split(":")[0] for ln in err.message.splitlines()[1:]}
    assert {"checker", "shards.prompts_per_shard", "selection.min_helpfulness"} <= paths


@pytest.mark.parametrize(
    ("yaml_text", "words"),
    [
        ("teachers: []\n", "at least one teacher"),
        ("teachers:\n  - name: a\n  - name: a\n", "names must be unique"),
        ("checker: judge\n", "needs a 'judge' endpoint"),
        ("expansion:\n  rewrites:\n    teacher: ghost\n", "expansion.rewrites.teacher"),
    ],
)
def test_cross_field_checks(tmp_path: Path, yaml_text: str, words: str) -> None:
    assert words in config_error(write(tmp_path, yaml_text)).message


def test_rewrite_teacher_defaults_to_first_and_can_be_named(tmp_path: Path) -> None:
    text = "teachers:\n  - name: a\n  - name: b\n"
    assert load_config(write(tmp_path, text)).rewrite_teacher().name == "a"
    text += "expansion:\n  rewrites:\n    teacher: b\n"
    assert load_config(write(tmp_path, text)).rewrite_teacher().name == "b"


def test_base_urls_are_normalised_to_a_tuple(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "teachers:\n  - name: t\n    base_url: ['http://a:8000/v1/', 'http://b:8000/v1']\n"))
    assert cfg.teachers[0].base_urls == ("http://a:8000/v1", "http://b:8000/v1")
    assert not cfg.teachers[0].is_scripted


def test_relative_seed_and_policy_paths_resolve_against_the_config_file(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "myseeds").mkdir()
    (tmp_path / "cfg" / "pol.yaml").write_text("x: 1\n")
    monkeypatch.chdir(tmp_path)  # neither path exists relative to the working directory
    cfg = load_config(write(tmp_path / "cfg", "seeds: myseeds\npolicy: pol.yaml\n"))
    assert cfg.seeds == [str((tmp_path / "cfg" / "myseeds").resolve())]
    assert cfg.policy == str((tmp_path / "cfg" / "pol.yaml").resolve())


# --- overrides --------------------------------------------------------------------------------------------


def test_overrides_parse_yaml_scalars() -> None:
    cfg = load_config(None, {"shards.prompts_per_shard": "32", "selection.min_helpfulness": "6.5",
                             "expansion.escalation": "false", "ray.address": "auto"})
    assert cfg.shards.prompts_per_shard == 32
    assert cfg.selection.min_helpfulness == 6.5
    assert cfg.expansion.escalation is False
    assert cfg.ray.address == "auto"


def test_override_text_keeps_its_type_for_text_fields() -> None:
    """`--dataset 2024` or `--set teachers.0.model=3.5` are names, not numbers; quotes are YAML's."""
    cfg = load_config(None, {"dataset": "2024", "teachers.0.model": "3.5", "ray.address": "10.0.0.1:6379"})
    assert (cfg.dataset, cfg.teachers[0].model, cfg.ray.address) == ("2024", "3.5", "10.0.0.1:6379")
    assert load_config(None, {"dataset": "'no'"}).dataset == "no"
    assert load_config(None, {"dataset": "yes"}).dataset == "yes"


def test_override_yaml_lists_and_null() -> None:
    cfg = load_config(None, {"teachers.0.styles": "[helpful, safe_completion]", "ray.workers": "3"})
    assert cfg.teachers[0].styles == ["helpful", "safe_completion"] and cfg.ray.workers == 3
    assert load_config(None, {"ray.workers": "3"}).ray.workers == 3
    assert load_config(None, {"ray.workers": "null"}).ray.workers is None
    err = config_error(None, {"shards.prompts_per_shard": "lots"})
    assert "shards.prompts_per_shard" in err.message


def test_overrides_apply_on_top_of_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, "teachers:\n  - name: a\n  - name: b\n    sampling:\n      n: 3\n")
    cfg = load_config(p, {"teachers.1.sampling.temperature": "0.3", "teachers.0.model": "m-a"})
    assert cfg.teachers[1].sampling.temperature == 0.3 and cfg.teachers[1].sampling.n == 3
    assert cfg.teachers[0].model == "m-a" and cfg.teachers[0].sampling.temperature == 0.8


def test_overrides_index_lists_of_the_embedded_defaults() -> None:
    """`--set teachers.0.sampling.temperature=0.5` with no config file edits the default teacher."""
    cfg = load_config(None, {"teachers.0.sampling.temperature": "0.5", "expansion.framings.0": "ambiguous"})
    assert cfg.teachers[0].name == "scripted" and cfg.teachers[0].is_scripted
    assert cfg.teachers[0].sampling.temperature == 0.5
    assert cfg.teachers[0].sampling.n == RunConfig().teachers[0].sampling.n
    assert cfg.expansion.framings[0] == "ambiguous"
    assert cfg.expansion.framings[1:] == RunConfig().expansion.framings[1:]


def test_override_of_an_optional_section_starts_empty() -> None:
    cfg = load_config(None, {"checker": "judge", "judge.name": "j", "judge.base_url": "http://127.0.0.1:9/v1"})
    assert cfg.judge is not None and cfg.judge.name == "j" and cfg.judge.model == "scripted-teacher-1"


def test_override_errors() -> None:
    err = config_error(None, {"teachers.7.name": "x"})
    assert err.where == "--set" and "teachers.7.name" in err.message
    err = config_error(None, {"teachers.0.sampling.temperature": "hot"})
    assert "teachers[0].sampling.temperature" in err.message


# --- secrets ----------------------------------------------------------------------------------------------


def judge_config(tmp_path: Path, var: str) -> RunConfig:
    return load_config(write(tmp_path, f"checker: judge\njudge:\n  name: j\n  base_url: http://127.0.0.1:9/v1\n  api_key_env: {var}\n"))


def test_missing_api_key_variable_names_field_and_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SCP_TEST_KEY", raising=False)
    monkeypatch.delenv("SCP_TEST_KEY_FILE", raising=False)
    cfg = judge_config(tmp_path, "SCP_TEST_KEY")  # validating never needs the key
    assert cfg.judge is not None
    with pytest.raises(ConfigError) as ei:
        resolve_api_key(cfg.judge, "judge")
    assert ei.value.where == "judge.api_key_env"
    assert "SCP_TEST_KEY" in ei.value.message and "SCP_TEST_KEY_FILE" in (ei.value.hint or "")


def test_api_key_from_env_and_from_file_variant(tmp_path: Path, monkeypatch) -> None:
    cfg = judge_config(tmp_path, "SCP_TEST_KEY")
    assert cfg.judge is not None
    monkeypatch.setenv("SCP_TEST_KEY", FAKE_KEY)
    assert resolve_api_key(cfg.judge, "judge") == FAKE_KEY
    monkeypatch.delenv("SCP_TEST_KEY")
    keyfile = tmp_path / "key.txt"
    keyfile.write_text(FAKE_KEY + "-from-file\n")
    monkeypatch.setenv("SCP_TEST_KEY_FILE", str(keyfile))
    assert resolve_api_key(cfg.judge, "judge") == FAKE_KEY + "-from-file"


def test_endpoint_without_key_variable_needs_no_key() -> None:
    assert resolve_api_key(RunConfig().teachers[0], "teachers[0]") is None


def test_public_dict_and_fingerprint_hold_no_secret(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCP_TEST_KEY", FAKE_KEY)
    cfg = judge_config(tmp_path, "SCP_TEST_KEY")
    dumped = json.dumps(cfg.public_dict())
    assert FAKE_KEY not in dumped and "FAKE-test-key" not in dumped
    assert cfg.public_dict()["judge"]["api_key_env"] == "SCP_TEST_KEY"
    assert FAKE_KEY not in json.dumps(cfg.fingerprint_parts())
    assert json.loads(dumped) == cfg.public_dict()  # plain JSON


# --- fingerprint ------------------------------------------------------------------------------------------


def fp(cfg: RunConfig, seeds: str = "s" * 64, policy: str = "p" * 64) -> str:
    return cfg.fingerprint(seeds_sha256=seeds, policy_sha256=policy)


def test_fingerprint_is_stable() -> None:
    assert fp(load_config()) == fp(load_config())


@pytest.mark.parametrize(
    "override",
    [
        {"teachers.0.sampling.temperature": "0.5"},
        {"teachers.0.sampling.n": "3"},
        {"teachers.0.model": "other-model"},
        {"teachers.0.styles": "[helpful]"},
        {"selection.min_helpfulness": "7"},
        {"expansion.max_prompts_per_seed": "3"},
        {"expansion.dedup.near_duplicate_threshold": "0.9"},
        {"expansion.rewrites.paraphrases": "0"},
        {"shards.prompts_per_shard": "10"},
        {"on_invalid_seed": "skip"},
    ],
)
def test_fingerprint_changes_with_content_settings(override: dict) -> None:
    assert fp(load_config(None, override)) != fp(load_config())


def test_fingerprint_changes_with_seeds_and_policy() -> None:
    cfg = load_config()
    assert fp(cfg, seeds="a" * 64) != fp(cfg, seeds="b" * 64)
    assert fp(cfg, policy="a" * 64) != fp(cfg, policy="b" * 64)


@pytest.mark.parametrize(
    "override",
    [
        {"teachers.0.max_concurrency": "7"},
        {"teachers.0.timeout_s": "5"},
        {"teachers.0.max_retries": "1"},
        {"teachers.0.base_url": "http://127.0.0.1:8000/v1"},
        {"output": "/tmp/elsewhere"},
        {"ray.workers": "3"},
        {"ray.address": "auto"},
        {"failure_budget.max_failed_ratio": "0.9"},
        {"scripted_teacher.latency_base": "0.5"},
    ],
)
def test_fingerprint_ignores_operational_settings(override: dict) -> None:
    cfg = load_config(None, override)
    assert cfg != load_config()  # the override did change something
    assert fp(cfg) == fp(load_config())
