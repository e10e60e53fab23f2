"""Model profiles: the shipped TOML, derived values, user files and their errors."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from hybridctx.errors import ConfigError
from hybridctx.routing.profiles import ModelProfile, get_profile, load_profiles, profile_counter

SHIPPED = {
    "kimi",
    "moonshot-v1-128k",
    "gpt-4o-mini",
    "qwen2.5-7b-instruct-1m-vllm-h100",
    "llama-3.1-8b-instruct-vllm-h100",
    "smollm2-135m-cpu",
}


def test_every_shipped_profile_loads():
    profiles = load_profiles()
    assert SHIPPED <= set(profiles)
    for name, profile in profiles.items():
        assert profile.name == name
        assert profile.kind in ("api", "local", "vllm")
        assert profile.window > 0


def test_api_profiles_are_priced_per_token():
    for name in ("kimi", "moonshot-v1-128k", "gpt-4o-mini"):
        p = get_profile(name)
        assert p.kind == "api"
        assert p.usd_per_m_input > 0 and p.usd_per_m_output > 0
        assert "check" in p.notes.lower()  # the user is told prices change
    assert get_profile("gpt-4o-mini").tokenizer == "o200k_base"
    assert get_profile("kimi").window == 131072


def test_qwen_kv_bytes_are_derived_from_its_shape():
    p = get_profile("qwen2.5-7b-instruct-1m-vllm-h100")
    assert (p.layers, p.kv_heads, p.head_dim, p.kv_dtype_bytes) == (28, 4, 128, 2)
    assert p.kv_bytes_per_token == 2 * 28 * 4 * 128 * 2 == 57_344
    assert p.window == 1_010_000
    assert p.weights_gib == pytest.approx(7.61e9 * 2 / 2**30)
    assert p.tokenizer == "Qwen/Qwen2.5-7B-Instruct-1M"


def test_llama_and_smollm_shapes():
    llama = get_profile("llama-3.1-8b-instruct-vllm-h100")
    assert llama.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2
    assert llama.window == 131072
    smol = get_profile("smollm2-135m-cpu")
    assert smol.kv_bytes_per_token == 2 * 30 * 3 * 64 * 2
    assert (smol.window, smol.usd_per_m_input, smol.usd_per_m_output) == (8192, 0.0, 0.0)
    assert smol.kind == "local"


def test_given_kv_bytes_win_over_the_derived_ones():
    p = ModelProfile(name="x", kind="api", model="m", window=100, prefill_tps=1, decode_tps=1,
                     layers=2, kv_heads=2, head_dim=2, kv_bytes_per_token=7)
    assert p.kv_bytes_per_token == 7


def test_profiles_are_frozen():
    p = get_profile("kimi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.window = 1  # type: ignore[misc]


def test_user_file_overrides_only_the_keys_it_sets(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text('[profiles.kimi]\nusd_per_m_input = 0.3\n', encoding="utf-8")
    p = get_profile("kimi", extra)
    assert p.usd_per_m_input == 0.3
    assert p.usd_per_m_output == get_profile("kimi").usd_per_m_output
    assert p.window == 131072
    assert get_profile("kimi").usd_per_m_input != 0.3  # the shipped set is untouched


def test_user_file_adds_profiles_new_and_extended(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[profiles.my-api]\nkind = "api"\nmodel = "m1"\nwindow = 32000\nprefill_tps = 1000.0\n'
        'decode_tps = 50.0\nusd_per_m_input = 1.0\nusd_per_m_output = 2.0\n\n'
        '[profiles.qwen-a100]\nextends = "qwen2.5-7b-instruct-1m-vllm-h100"\npeak_flops = 3.12e14\n'
        'memory_bandwidth = 2.0e12\nusd_per_gpu_hour = 1.5\n',
        encoding="utf-8",
    )
    profiles = load_profiles(extra)
    assert SHIPPED <= set(profiles)
    assert profiles["my-api"].window == 32000
    a100 = profiles["qwen-a100"]
    assert a100.peak_flops == 3.12e14 and a100.usd_per_gpu_hour == 1.5
    assert a100.kv_bytes_per_token == 57_344
    assert a100.model == "Qwen/Qwen2.5-7B-Instruct-1M"


def test_unknown_key_names_the_nearest(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text('[profiles.kimi]\nusd_per_m_inptu = 0.3\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="usd_per_m_inptu.*did you mean 'usd_per_m_input'"):
        load_profiles(extra)


def test_unknown_top_level_key(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text('[profile.kimi]\nwindow = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean 'profiles'"):
        load_profiles(extra)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ConfigError, match="unknown model profile 'kimmi'.*did you mean 'kimi'"):
        get_profile("kimmi")
    with pytest.raises(ConfigError, match="known profiles: .*gpt-4o-mini"):
        get_profile("zzz")


def test_extends_unknown_profile(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text('[profiles.x]\nextends = "gpt-4o-mni"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="extends unknown profile 'gpt-4o-mni'.*'gpt-4o-mini'"):
        load_profiles(extra)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_profiles(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[profiles.x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profiles(bad)


def test_missing_required_keys_and_throughput(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text('[profiles.x]\nkind = "api"\nmodel = "m"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="missing window"):
        load_profiles(extra)
    with pytest.raises(ConfigError, match="prefill speed is unknown"):
        ModelProfile(name="x", kind="api", model="m", window=10, decode_tps=1.0)
    with pytest.raises(ConfigError, match="decode speed is unknown"):
        ModelProfile(name="x", kind="api", model="m", window=10, prefill_tps=1.0)


def test_bad_values_are_refused():
    base = dict(name="x", model="m", window=10, prefill_tps=1.0, decode_tps=1.0)
    with pytest.raises(ConfigError, match="kind 'cloud'"):
        ModelProfile(kind="cloud", **base)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="flops_efficiency"):
        ModelProfile(kind="api", flops_efficiency=1.5, **base)
    with pytest.raises(ConfigError, match="usd_per_m_input"):
        ModelProfile(kind="api", usd_per_m_input=-1, **base)
    with pytest.raises(ConfigError, match="window"):
        ModelProfile(kind="api", **{**base, "window": 0})


def test_counter_uses_the_shipped_encoding():
    assert profile_counter(get_profile("gpt-4o-mini")).name == "o200k_base"


def test_counter_falls_back_and_says_so(caplog):
    p = dataclasses.replace(get_profile("kimi"), tokenizer="nobody/no-such-tokenizer-here")
    with caplog.at_level(logging.INFO, logger="hybridctx.routing.profiles"):
        counter = profile_counter(p)
    assert counter.name == "cl100k_base"
    assert "not available offline" in caplog.text
