"""The package's public names, loaded on first use."""

from __future__ import annotations

import ast
import importlib
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

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


TOOLS = pathlib.Path(ROOT, "nova_notifier", "tools")


def _library_imports(source: str, module: str) -> list[str]:
    """What ``source`` (the code of ``module``) imports of the library
    that is neither a public name of ``nova_notifier`` nor a tool."""
    if module.endswith(".__init__"):
        package = module.removesuffix(".__init__")
    else:
        package = module.rpartition(".")[0]
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the tool's package
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            targets = [(base, alias.name) for alias in node.names]
        else:
            continue
        for name, item in targets:
            if name == "nova_notifier.tools" or name.startswith("nova_notifier.tools."):
                continue
            if name == "nova_notifier" and item in (None, *nova_notifier.__all__):
                continue
            if name == "nova_notifier" or name.startswith("nova_notifier."):
                bad.append(name if item is None else f"{name}:{item}")
    return bad


def _tool_modules() -> dict[str, str]:
    found = {}
    for path in sorted(TOOLS.rglob("*.py")):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[dotted] = path.read_text(encoding="utf-8")
    return found


def test_the_tools_import_only_the_public_api_and_each_other():
    modules = _tool_modules()
    assert "nova_notifier.tools.cli" in modules and len(modules) > 10
    bad = {
        module: found
        for module, source in modules.items()
        if (found := _library_imports(source, module))
    }
    assert bad == {}, "tools must import only nova_notifier's public names"


@pytest.mark.parametrize(
    "line",
    [
        "from nova_notifier.notifier import PRIORITIES",
        "import nova_notifier.notifier",
        "from nova_notifier import notifier",
        "from nova_notifier import _spool_db",
        "from ... import serializer",
        "from ...masking import is_secret_key",
        "def f():\n    from nova_notifier._log import get_logger",
    ],
)
def test_the_import_check_catches_a_tool_reaching_inside(line):
    assert _library_imports(line, "nova_notifier.tools.latency.command")


def test_the_import_check_lets_public_names_and_tools_through():
    source = (
        "import nova_notifier\n"
        "from nova_notifier import init, PRIORITIES, task_states\n"
        "from nova_notifier.tools import display\n"
        "from nova_notifier.tools.latency.events import Tracker\n"
        "from . import events\n"
        "from ..listen import serve\n"
    )
    assert _library_imports(source, "nova_notifier.tools.latency.command") == []


def test_using_the_library_loads_none_of_the_tools():
    code = (
        "import nova_notifier\n"
        "from oslo_config import cfg\n"
        "conf = cfg.ConfigOpts()\n"
        "conf([], project='nova-notifier', default_config_files=[])\n"
        "nova_notifier.register_opts(conf)\n"
        "conf.set_override('transport_url', 'fake://')\n"
        "conf.set_override('driver', ['messagingv2'], "
        "group='oslo_messaging_notifications')\n"
        "nova_notifier.init(conf)\n"
        "nova_notifier.get_notifier('compute', 'h1').info({}, 'test.event', {'a': 1})\n"
        "assert nova_notifier.stats()['queued'] == 1, nova_notifier.stats()\n"
        "for name in nova_notifier.__all__:\n"
        "    getattr(nova_notifier, name)\n"
        "nova_notifier.cleanup()"
    )
    loaded = _modules_after(code)
    assert "nova_notifier.notifier" in loaded  # the code did run
    assert sorted(m for m in loaded if m.startswith("nova_notifier.tools")) == []


def test_the_wheel_carries_the_schema_files(tmp_path):
    # Built from a copy, so the checkout gets no build/ directory.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(pathlib.Path(ROOT, name), src)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("etc", "nova_notifier"):
        shutil.copytree(pathlib.Path(ROOT, name), src / name, ignore=ignore)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, src],
        capture_output=True,
        timeout=300,
        check=True,
    )
    (wheel,) = dist.glob("*.whl")
    data = pathlib.Path(ROOT, "nova_notifier", "schemas", "data")
    expected = {
        "/".join(("nova_notifier", "schemas", "data", *p.relative_to(data).parts))
        for p in data.rglob("*.json")
    }
    assert len(expected) > 4
    with zipfile.ZipFile(wheel) as archive:
        assert expected <= set(archive.namelist())
        archive.extractall(tmp_path / "site")
    # The installed package finds its schemas (not the checkout's).
    check = (
        "from nova_notifier import schemas\n"
        f"assert schemas.__file__.startswith({str(tmp_path / 'site')!r})\n"
        "for event_type in schemas.event_types():\n"
        "    assert schemas.schema_for(event_type)['$schema']\n"
        "print(len(schemas.event_types()))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run(
        [sys.executable, "-c", check],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(out.stdout) > 4
