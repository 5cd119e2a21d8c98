"""monkey_patch: wrapping a module's functions and methods from configuration."""

from __future__ import annotations

import json
import textwrap

import patch_decorators
import patch_target
import pytest
from conftest import make_conf

import nova_notifier

MODULE = patch_target.__name__
ENTRY = f"{MODULE}:nova_notifier.notify_decorator"
LEVELS = ("debug", "info", "warn", "error", "critical")

ALL_WRAPPED = {
    f"{MODULE}.add",
    f"{MODULE}.greet",
    f"{MODULE}.Service.__init__",
    f"{MODULE}.Service.__repr__",
    f"{MODULE}.Service.scale",
    f"{MODULE}.Service.double",
    f"{MODULE}.Service.build",
    f"{MODULE}.Base.describe",
    f"{MODULE}.Child.own",
}


def _snapshot():
    owners = [patch_target, patch_target.Service, patch_target.Base]
    owners += [patch_target.Child, patch_target.ImportedClass]
    return {id(owner): dict(vars(owner)) for owner in owners}


ORIGINAL = _snapshot()


def _unchanged():
    return _snapshot() == ORIGINAL


@pytest.fixture(autouse=True)
def undo_patches():
    nova_notifier.undo_monkey_patch()
    patch_decorators.WRAPPED.clear()
    assert _unchanged()
    yield
    nova_notifier.undo_monkey_patch()
    assert _unchanged()


@pytest.fixture
def patched(fake_env):
    fake_env.override("monkey_patch", True)
    fake_env.override("monkey_patch_modules", [ENTRY])
    assert nova_notifier.monkey_patch(fake_env.conf) == len(ALL_WRAPPED)
    return fake_env


def arrived(env):
    return [(g.event_type, g.payload) for g in env.settle(priorities=LEVELS)]


def test_nothing_is_wrapped_unless_monkey_patch_is_on(fake_env):
    fake_env.override("monkey_patch_modules", [ENTRY])

    assert nova_notifier.monkey_patch(fake_env.conf) == 0

    assert _unchanged()
    assert patch_target.add(1, 2) == 3
    assert arrived(fake_env) == []


def test_exactly_the_modules_own_functions_and_methods_are_wrapped():
    conf = make_conf("fake://", "unused")
    conf.set_override("monkey_patch", True)
    conf.set_override("monkey_patch_modules", [f"{MODULE}:patch_decorators.record"])

    assert nova_notifier.monkey_patch(conf) == len(ALL_WRAPPED)

    assert sorted(patch_decorators.WRAPPED) == sorted(ALL_WRAPPED)


def test_module_functions_emit_their_dotted_name(patched):
    assert patch_target.add(2, 3) == 5
    assert patch_target.greet("bob", punctuation="?") == "hello bob?"

    assert arrived(patched) == [
        (f"{MODULE}.add", {"args": [2, 3], "kwarg": {}}),
        (f"{MODULE}.greet", {"args": ["bob"], "kwarg": {"punctuation": "?"}}),
    ]


def test_wrapped_calls_arrive_with_default_level_and_publisher(patched):
    patched.override("default_level", "WARN", group="notifications")

    patch_target.add(1, 1)

    [got] = patched.settle(priorities=LEVELS)
    assert (got.event_type, got.priority, got.publisher_id) == (
        f"{MODULE}.add",
        "WARN",
        "testhost",
    )


def test_methods_emit_class_qualified_names_without_self(patched):
    service = patch_target.Service(3)

    assert service.scale(4) == 12
    assert service.scale(factor=2) == 6

    assert arrived(patched) == [
        (f"{MODULE}.Service.__init__", {"args": [3], "kwarg": {}}),
        (f"{MODULE}.Service.scale", {"args": [4], "kwarg": {}}),
        (f"{MODULE}.Service.scale", {"args": [], "kwarg": {"factor": 2}}),
    ]


def test_static_methods_stay_static(patched):
    assert isinstance(vars(patch_target.Service)["double"], staticmethod)

    assert patch_target.Service.double(5) == 10
    assert patch_target.Service(1).double(6) == 12

    assert arrived(patched) == [
        (f"{MODULE}.Service.double", {"args": [5], "kwarg": {}}),
        (f"{MODULE}.Service.__init__", {"args": [1], "kwarg": {}}),
        (f"{MODULE}.Service.double", {"args": [6], "kwarg": {}}),
    ]


def test_class_methods_still_receive_the_class(patched):
    assert isinstance(vars(patch_target.Service)["build"], classmethod)

    built = patch_target.Service.build(7)
    from_instance = built.build(8)

    assert type(built) is patch_target.Service and built.base == 7
    assert type(from_instance) is patch_target.Service and from_instance.base == 8
    assert arrived(patched) == [
        (f"{MODULE}.Service.build", {"args": [7], "kwarg": {}}),
        (f"{MODULE}.Service.__init__", {"args": [7], "kwarg": {}}),
        (f"{MODULE}.Service.build", {"args": [8], "kwarg": {}}),
        (f"{MODULE}.Service.__init__", {"args": [8], "kwarg": {}}),
    ]


def test_inherited_method_is_wrapped_once(patched):
    assert "describe" not in vars(patch_target.Child)

    assert patch_target.Child().describe("x") == "Child:x"
    assert patch_target.Child().own() == "own"

    assert arrived(patched) == [
        (f"{MODULE}.Base.describe", {"args": ["x"], "kwarg": {}}),
        (f"{MODULE}.Child.own", {"args": [], "kwarg": {}}),
    ]


def test_imported_names_and_properties_are_left_alone(patched):
    assert patch_target.imported_function is textwrap.dedent
    assert patch_target.ImportedClass is json.JSONEncoder
    assert vars(json.JSONEncoder) == ORIGINAL[id(patch_target.ImportedClass)]
    for name in ("doubled_base", "label"):
        assert (
            vars(patch_target.Service)[name] is ORIGINAL[id(patch_target.Service)][name]
        )
    assert patch_target.imported_function("  x") == "x"
    assert patch_target.ImportedClass().encode({"a": 1}) == '{"a": 1}'
    assert arrived(patched) == []


def test_dunder_methods_are_wrapped_like_any_method(patched):
    service = patch_target.Service(4)
    assert repr(service) == "Service(4)"
    assert service.doubled_base == 8
    assert arrived(patched) == [
        (f"{MODULE}.Service.__init__", {"args": [4], "kwarg": {}}),
        (f"{MODULE}.Service.__repr__", {"args": [], "kwarg": {}}),
    ]


@pytest.mark.parametrize(
    "second_entry",
    [ENTRY, f"{MODULE}:nova_notifier.decorator.notify_decorator"],
    ids=["same-entry", "same-decorator-other-path"],
)
def test_calling_monkey_patch_twice_does_not_wrap_twice(patched, second_entry):
    patched.override("monkey_patch_modules", [second_entry])

    assert nova_notifier.monkey_patch(patched.conf) == 0

    assert patch_target.add(1, 2) == 3
    assert patch_target.Child().describe("y") == "Child:y"
    assert arrived(patched) == [
        (f"{MODULE}.add", {"args": [1, 2], "kwarg": {}}),
        (f"{MODULE}.Base.describe", {"args": ["y"], "kwarg": {}}),
    ]


def test_monkey_patch_reads_the_initialised_configuration(fake_env):
    fake_env.override("monkey_patch", True)
    fake_env.override("monkey_patch_modules", [ENTRY])

    assert nova_notifier.monkey_patch() == len(ALL_WRAPPED)

    patch_target.add(0, 0)
    assert arrived(fake_env) == [(f"{MODULE}.add", {"args": [0, 0], "kwarg": {}})]


@pytest.mark.parametrize(
    "bad_entry",
    [
        "nocolon",
        f"{MODULE}:",
        ":nova_notifier.notify_decorator",
        "missing_module_xyz.sub:nova_notifier.notify_decorator",
        f"{MODULE}:no.such.decorator",
        f"{MODULE}:nova_notifier.no_such_decorator",
        f"{MODULE}:patch_decorators.not_callable",
    ],
)
def test_bad_entry_raises_naming_it_and_patches_nothing(fake_env, bad_entry):
    fake_env.override("monkey_patch", True)
    fake_env.override("monkey_patch_modules", [ENTRY, bad_entry])

    with pytest.raises(nova_notifier.MonkeyPatchError) as excinfo:
        nova_notifier.monkey_patch(fake_env.conf)

    assert repr(bad_entry) in str(excinfo.value)
    assert _unchanged()
    patch_target.add(1, 1)
    assert arrived(fake_env) == []


def test_undo_restores_the_originals_and_allows_patching_again(patched):
    nova_notifier.undo_monkey_patch()

    assert _unchanged()
    assert patch_target.add(1, 2) == 3
    assert patch_target.Service.double(2) == 4
    assert arrived(patched) == []

    assert nova_notifier.monkey_patch(patched.conf) == len(ALL_WRAPPED)
    assert patch_target.add(1, 2) == 3
    assert arrived(patched) == [(f"{MODULE}.add", {"args": [1, 2], "kwarg": {}})]
