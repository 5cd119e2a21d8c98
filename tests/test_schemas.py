"""The payload schemas: valid 2020-12 schemas that what the library really
sends matches, and that reject what it never sends; ``nova-notifier schema``."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import webob

import nova_notifier
from nova_notifier import schemas
from nova_notifier.tools import cli
from tests.test_usage import NETWORK_INFO, ComputeError, instance

DATA = Path(schemas.__file__).parent / "data"
LEGACY_FILES = sorted(p.name for p in (DATA / "legacy").glob("*.json"))


def sent(env, event_type: str) -> list[dict[str, Any]]:
    """The payloads of ``event_type`` that arrived (all of them validated
    against their schema by the Collector as they came)."""
    return [g.payload for g in env.settle() if g.event_type == event_type]


def failing_path(event_type: str, payload: Any) -> str:
    with pytest.raises(jsonschema.ValidationError) as caught:
        schemas.validate(event_type, payload)
    return caught.value.json_path


# -- the schemas themselves --------------------------------------------------


@pytest.mark.parametrize("event_type", [*schemas.event_types(), "compute.instance.x"])
def test_every_schema_is_a_valid_2020_12_schema(event_type):
    schema = schemas.schema_for(event_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] and schema["description"]


@pytest.mark.parametrize("name", LEGACY_FILES)
def test_every_file_is_a_2020_12_schema_with_id_title_and_description(name):
    schema = json.loads((DATA / "legacy" / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/legacy/{name}")
    assert schema["title"] and schema["description"]


def test_the_index_names_existing_files_and_every_file_is_used():
    index = json.loads((DATA / "index.json").read_text(encoding="utf-8"))
    named = {*index["event_types"].values(), *index["prefixes"].values()}
    assert all((DATA / path).is_file() for path in named)
    bundled = {
        key
        for event_type in schemas.event_types()
        for key in schemas.schema_for(event_type).get("$defs", {})
        if key.endswith(".json")
    }
    files = {str(path.relative_to(DATA)) for path in DATA.glob("*/*.json")}
    assert files == named | bundled


def test_event_types_are_the_known_ones_sorted():
    known = schemas.event_types()
    assert known == sorted(known)
    assert {
        "api.fault",
        "compute.instance.update",
        "compute.instance.exists",
        "compute.instance.create.start",
        "compute.instance.create.end",
        "compute.instance.create.error",
        "compute.instance.delete.end",
        "compute.instance.resize.confirm.end",
    } <= set(known)


@pytest.mark.parametrize(
    "event_type",
    ["compute.instance.create.end", "compute.instance.frobnicate.start"],
)
def test_any_compute_instance_suffix_has_the_usage_schema(event_type):
    assert schemas.schema_for(event_type)["$id"].endswith("/compute.instance.json")


@pytest.mark.parametrize(
    "event_type", ["test.marker", "compute.instance.", "compute.other", ""]
)
def test_an_unknown_event_type_is_a_lookup_error(event_type):
    with pytest.raises(LookupError, match="no schema for event type"):
        schemas.schema_for(event_type)
    with pytest.raises(schemas.UnknownEventType):
        schemas.validate(event_type, {})


def test_schema_for_returns_a_copy_that_stands_alone():
    schema = schemas.schema_for("compute.instance.update")
    schema["required"].clear()
    assert schemas.schema_for("compute.instance.update")["required"]
    # $ref to the shared file resolves inside the bundle: no registry needed.
    validator = jsonschema.Draft202012Validator(schemas.schema_for("api.fault"))
    assert validator.is_valid({"url": "u", "status": 500, "exception": "E"})
    update = jsonschema.Draft202012Validator(schemas.schema_for(UPDATE))
    assert not update.is_valid({})


def test_the_library_core_does_not_import_jsonschema():
    from tests.test_package import _modules_after

    code = (
        "from nova_notifier import schemas\n"
        "schemas.schema_for('api.fault'); schemas.event_types()"
    )
    assert not {m for m in _modules_after(code) if m.startswith("jsonschema")}


# -- what the library sends validates ----------------------------------------

UPDATE = "compute.instance.update"


@pytest.fixture
def updates(fake_env):
    fake_env.override("notify_on_state_change", "vm_and_task_state", "notifications")
    return fake_env


def test_send_update_payloads_validate(updates):
    old = instance(vm_state="building", task_state="spawning")
    nova_notifier.send_update({}, old, instance())  # transition, task state None
    renamed = instance(display_name="db-2")
    nova_notifier.send_update({}, instance(), renamed)  # plain, renamed
    bare = {"uuid": "u-1"}
    nova_notifier.send_update({}, bare, bare)  # no states at all: nulls
    got = sent(updates, UPDATE)
    assert len(got) == 3
    assert got[0]["new_task_state"] is None and got[2]["state"] is None
    assert got[1]["old_display_name"] == "db-1"
    for payload in got:
        schemas.validate(UPDATE, payload)


def test_send_update_with_states_payloads_validate(updates):
    nova_notifier.send_update_with_states(
        {}, instance(), None, "building", None, None, service="api"
    )
    nova_notifier.send_update_with_states(
        {}, instance(progress=40), "active", "stopped", "powering-off", None
    )
    got = sent(updates, UPDATE)
    assert [p["state"] for p in got] == ["building", "stopped"]
    for payload in got:
        schemas.validate(UPDATE, payload)


@pytest.mark.parametrize(
    "suffix",
    [
        "create.start",
        "create.end",
        "delete.end",
        "resize.prep.start",
        "live_migration.post.dest.end",
        "something.new",
    ],
)
def test_usage_payloads_validate(fake_env, suffix):
    compute = nova_notifier.get_notifier("compute")
    nova_notifier.notify_about_instance_usage(
        compute,
        {},
        instance(created_at=datetime.datetime(2012, 2, 20, 9, 0)),
        suffix,
        network_info=NETWORK_INFO,
        extra_usage_info={"message": "Success", "new_instance_type": "m1.xlarge"},
    )
    (payload,) = sent(fake_env, f"compute.instance.{suffix}")
    assert payload["fixed_ips"][0]["address"] == "10.0.0.5"
    schemas.validate(f"compute.instance.{suffix}", payload)


def test_an_error_with_a_fault_validates(fake_env):
    compute = nova_notifier.get_notifier("compute")
    fault = ComputeError(code=409, name="db-1", reason="x" * 400)
    nova_notifier.notify_about_instance_usage(
        compute, {}, instance(), "create.error", fault=fault
    )
    (payload,) = sent(fake_env, "compute.instance.create.error")
    assert payload["code"] == 409 and len(payload["message"]) == 255
    schemas.validate("compute.instance.create.error", payload)


@pytest.mark.parametrize("current_period", [False, True])
def test_usage_exists_validates(fake_env, current_period):
    compute = nova_notifier.get_notifier("compute")
    nova_notifier.notify_usage_exists(
        compute,
        {},
        instance(),
        current_period=current_period,
        extra_usage_info={"bandwidth": {"private": {"bw_in": 1, "bw_out": 2}}},
    )
    (payload,) = sent(fake_env, "compute.instance.exists")
    schemas.validate("compute.instance.exists", payload)


@pytest.mark.parametrize("status", [404, 500])
def test_faultwrap_api_faults_validate(fake_env, status):
    fake_env.override("notify_on_api_faults", True, group="notifications")

    def app(environ, start_response):
        raise webob.exc.status_map[status]()

    webob.Request.blank("/servers/x").get_response(nova_notifier.FaultWrapper(app))
    (payload,) = sent(fake_env, "api.fault")
    assert payload["status"] == status
    schemas.validate("api.fault", payload)


@pytest.mark.broker
def test_payloads_through_rabbitmq_validate(broker_env):
    broker_env.override("notify_on_state_change", "vm_state", "notifications")
    compute = nova_notifier.get_notifier("compute")
    nova_notifier.send_update({}, instance(vm_state="building"), instance())
    nova_notifier.notify_about_instance_usage(
        compute, {}, instance(), "create.end", network_info=NETWORK_INFO
    )
    nova_notifier.notify_usage_exists(compute, {}, instance())
    got = broker_env.settle()
    assert sorted(g.event_type for g in got) == [
        "compute.instance.create.end",
        "compute.instance.exists",
        UPDATE,
    ]
    for item in got:
        schemas.validate(item.event_type, item.payload)


# -- and what it never sends does not ----------------------------------------


def _usage_payload() -> dict[str, Any]:
    return nova_notifier.info_from_instance({}, instance(), NETWORK_INFO, None)


def _update_payload() -> dict[str, Any]:
    payload = nova_notifier.info_from_instance({}, instance(), None, None)
    payload.update(
        old_state="building",
        state="active",
        old_task_state="spawning",
        new_task_state=None,
        audit_period_beginning="2012-03-01T00:00:00.000000",
        audit_period_ending="2012-03-05T08:12:23.000000",
        bandwidth={},
    )
    return payload


def _exists_payload() -> dict[str, Any]:
    payload = nova_notifier.info_from_instance({}, instance(), None, None)
    payload.update(
        audit_period_beginning="2012-02-01 00:00:00",
        audit_period_ending="2012-03-01 00:00:00",
        bandwidth={},
    )
    return payload


def _fault_payload() -> dict[str, Any]:
    return {"url": "http://localhost/servers", "status": 404, "exception": "E"}


BUILDERS = {
    "compute.instance.create.end": _usage_payload,
    UPDATE: _update_payload,
    "compute.instance.exists": _exists_payload,
    "api.fault": _fault_payload,
}


@pytest.fixture
def initialised(fake_env):
    """info_from_instance() needs the library set up (image_endpoint)."""
    return fake_env


@pytest.mark.parametrize("event_type", sorted(BUILDERS))
def test_the_reference_payloads_validate(initialised, event_type):
    schemas.validate(event_type, BUILDERS[event_type]())


_DROP = object()


@pytest.mark.parametrize(
    ("event_type", "path", "value", "json_path"),
    [
        # wrong types
        ("compute.instance.create.end", ("memory_mb",), "8192", "$.memory_mb"),
        ("compute.instance.create.end", ("tenant_id",), None, "$.tenant_id"),
        ("compute.instance.create.end", ("metadata",), [], "$.metadata"),
        ("compute.instance.create.end", ("image_meta",), "x", "$.image_meta"),
        ("compute.instance.create.end", ("progress",), 0, "$.progress"),
        ("compute.instance.create.end", ("disk_gb",), 1.5, "$.disk_gb"),
        (
            "compute.instance.create.end",
            ("fixed_ips", 0, "version"),
            "4",
            "$.fixed_ips[0].version",
        ),
        (
            "compute.instance.create.end",
            ("fixed_ips", 0, "type"),
            "floating",
            "$.fixed_ips[0].type",
        ),
        ("compute.instance.create.end", ("code",), "500", "$.code"),
        (
            UPDATE,
            ("audit_period_ending",),
            "2012-03-05 08:12:23",
            "$.audit_period_ending",
        ),
        (UPDATE, ("bandwidth",), None, "$.bandwidth"),
        (UPDATE, ("instance_type_id",), None, "$.instance_type_id"),
        (
            "compute.instance.exists",
            ("audit_period_beginning",),
            "2012-02",
            "$.audit_period_beginning",
        ),
        ("api.fault", ("status",), "404", "$.status"),
        ("api.fault", ("exception",), {"type": "E"}, "$.exception"),
        # missing required keys
        ("compute.instance.create.end", ("instance_id",), _DROP, "$"),
        (
            "compute.instance.create.end",
            ("fixed_ips", 0, "vif_mac"),
            _DROP,
            "$.fixed_ips[0]",
        ),
        (UPDATE, ("old_task_state",), _DROP, "$"),
        ("compute.instance.exists", ("bandwidth",), _DROP, "$"),
        ("api.fault", ("url",), _DROP, "$"),
    ],
)
def test_a_payload_the_library_never_sends_fails(
    initialised, event_type, path, value, json_path
):
    payload = BUILDERS[event_type]()
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    if value is _DROP:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    assert failing_path(event_type, payload) == json_path


def test_a_fault_message_over_255_characters_fails(initialised):
    payload = _usage_payload()
    payload.update(exception="E: x", message="x" * 256, code=500)
    assert failing_path("compute.instance.create.error", payload) == "$.message"
    # without a fault, message is the caller's (extra_usage_info): any length
    payload.pop("exception")
    schemas.validate("compute.instance.create.end", payload)


def test_a_fault_needs_all_three_keys(initialised):
    payload = _usage_payload()
    payload.update(exception="E: x")
    assert failing_path("compute.instance.create.error", payload) == "$"


def test_extra_keys_are_allowed_where_extra_usage_info_goes(initialised):
    usage = _usage_payload()
    usage["new_instance_type"] = "m1.xlarge"
    schemas.validate("compute.instance.resize.finish.end", usage)
    exists = _exists_payload()
    exists["audit_period_extra"] = {"anything": [1, 2]}
    schemas.validate("compute.instance.exists", exists)


@pytest.mark.parametrize("event_type", [UPDATE, "api.fault"])
def test_no_extra_keys_where_the_library_adds_none(initialised, event_type):
    payload = BUILDERS[event_type]()
    payload["unexpected"] = 1
    with pytest.raises(jsonschema.ValidationError, match="unexpected"):
        schemas.validate(event_type, payload)


# -- the Collector checks every message it receives --------------------------


def test_the_collector_records_a_message_that_does_not_match(fake_env):
    from tests.conftest import schema_problem

    compute = nova_notifier.get_notifier("compute")
    compute.info({}, "test.anything", {"free": "form"})  # no schema: skipped
    assert fake_env.settle()
    assert fake_env.collector.invalid == []
    problem = schema_problem("api.fault", {"url": "u", "status": 500})
    assert problem == "api.fault: $: 'exception' is a required property"

    compute.error({}, "api.fault", {"url": "u", "status": 500})
    fake_env.settle()
    assert fake_env.collector.invalid == [problem]
    fake_env.collector.invalid.clear()  # else this test fails at teardown


# -- nova-notifier schema ----------------------------------------------------


def test_cli_prints_the_schema(capsys):
    assert cli.main(["schema", UPDATE]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == schemas.schema_for(UPDATE)
    assert out.startswith('{\n  "$schema"') and err == ""


def test_cli_prints_the_schema_of_any_compute_instance_suffix(capsys):
    assert cli.main(["schema", "compute.instance.frobnicate.end"]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out)["title"].startswith("compute.instance.<suffix>")


def test_cli_lists_the_event_types(capsys):
    assert cli.main(["schema", "--list"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == schemas.event_types()
    assert err == ""


def test_cli_unknown_event_type_exits_2(capsys):
    assert cli.main(["schema", "no.such.event"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "no schema for event type 'no.such.event'" in err


def test_cli_needs_an_event_type_or_list(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["schema"])
    assert caught.value.code == 2
