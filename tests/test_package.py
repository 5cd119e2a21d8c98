"""The package's public names, loaded on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import nova_notifier

ROOT = __file__.rsplit("/tests/", 1)[0]


@pytest.mark.parametrize("name", nova_notifier.__all__)
def test_each_public_name_is_the_object_its_module_defines(name):
    home = nova_notifier._HOMES[name]
    module = importlib.import_module(f"nova_notifier.{home}")
    expected = module if home == name else getattr(module, name)
    assert getattr(nova_notifier, name) is expected
    assert name in dir(nova_notifier)
    assert expected.__doc__, f"{name} has no docstring"


def test_public_names_and_loader_agree():
    assert sorted(nova_notifier.__all__) == sorted(nova_notifier._HOMES)
    namespace: dict[str, object] = {}
    exec("from nova_notifier import *", namespace)
    assert set(nova_notifier.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'send_updates'"):
        nova_notifier.send_updates  # noqa: B018


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(out.stdout.split())


def test_importing_the_package_or_reading_a_file_loads_no_oslo_messaging(tmp_path):
    # `nova-notifier latency --from FILE` starts in a tenth of a second
    # because neither needs oslo.messaging (most of a second to import).
    assert "oslo_messaging" not in _modules_after("import nova_notifier")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    run = (
        "from nova_notifier.tools import cli\n"
        f"assert cli.main(['latency', '--from', {str(empty)!r}, '--no-progress']) == 0"
    )
    assert "oslo_messaging" not in _modules_after(run)
    loaded = _modules_after("import nova_notifier\nnova_notifier.init")
    assert "oslo_messaging" in loaded
