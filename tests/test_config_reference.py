"""The README's configuration reference is the models' own: every key with its default, and no other key."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel

from homegrid.config import SECRET_KEYS, Config, Secrets, load_config
from homegrid.credentials import load_credentials
from homegrid.tariffs.readers import load_tariff

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _script() -> ModuleType:
    path = ROOT / "scripts" / "config-reference"
    loader = importlib.machinery.SourceFileLoader("config_reference", str(path))
    spec = importlib.util.spec_from_loader("config_reference", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


SCRIPT = _script()


def _reference_blocks() -> tuple[str, str]:
    start = README.index(SCRIPT.BEGIN) + len(SCRIPT.BEGIN)
    config, secrets = re.findall(r"```toml\n(.*?)```", README[start:README.index(SCRIPT.END)], re.S)
    return config, secrets


def _tables() -> list[tuple[str, type[BaseModel]]]:
    """Every table of the config file, by its TOML name, from the models."""
    tables: list[tuple[str, type[BaseModel]]] = []
    for name, field in Config.model_fields.items():
        model = SCRIPT.section_model(field)
        if model is None:
            assert name == "source"
            continue
        tables.append((name, model))
        for key, sub in model.model_fields.items():
            rows = SCRIPT.rows_model(sub)
            if rows is not None:
                tables.append((f"{name}.{key}", rows))
    return tables


def test_the_readme_reference_is_what_the_script_writes():
    assert SCRIPT.readme_with(README, SCRIPT.reference()) == README, "run scripts/config-reference --write"


def test_every_key_has_a_description():
    for name, model in [*_tables(), *[(n, SCRIPT.section_model(f)) for n, f in Secrets.model_fields.items()]]:
        assert model.__doc__, name
        for key, field in model.model_fields.items():
            assert field.description, f"{name}.{key} has no Field(description=...)"


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def test_the_reference_lists_every_key_with_its_default_and_no_other():
    config, _ = _reference_blocks()
    parsed = tomllib.loads(config)
    commented = {m.group(1) for m in re.finditer(r"^# (\w+) = ", config, re.M)}
    for name, model in _tables():
        table: Any = parsed
        for part in name.split("."):
            table = table[part]
        if isinstance(table, list):  # [[mqtt.meters]]: one table shown
            (table,) = table
        expected = {}
        for key, field in model.model_fields.items():
            if SCRIPT.rows_model(field) is not None:
                continue
            default = field.get_default(call_default_factory=True)
            if default is None:
                assert key in commented, f"{name}.{key}: unset by default, shown commented out"
                continue
            expected[key] = _plain(default)
        shown = {k: v for k, v in table.items() if not isinstance(v, dict | list) or k in expected}
        assert shown == expected, name
    assert [k for k in parsed if k not in Config.model_fields] == []


def test_the_credentials_reference_lists_every_secret():
    _, secrets = _reference_blocks()
    parsed = tomllib.loads(secrets)
    assert {name: tuple(table) for name, table in parsed.items()} == SECRET_KEYS


def _examples() -> list[str]:
    """The README's other TOML blocks: examples, which must load as they are."""
    start, end = README.index(SCRIPT.BEGIN), README.index(SCRIPT.END)
    outside = README[:start] + README[end:]
    return re.findall(r"```toml\n(.*?)```", outside, re.S)


def test_the_readme_has_examples():
    assert len(_examples()) >= 3


@pytest.mark.parametrize("text", _examples())
def test_every_readme_example_loads(tmp_path, text):
    path = tmp_path / ("credentials.toml" if text.startswith("# credentials.toml") else "homegrid.toml")
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)
    if path.name == "credentials.toml":
        assert load_credentials(path).sections
    elif text.startswith("# rates.toml"):  # the Tariffs section's tariff file, not a config
        tariff, warnings = load_tariff(text)
        assert tariff.name and warnings == []
    else:
        assert load_config(path).source == path
