"""The versioned payloads' schemas: generated from the classes, strict, and
accepting Nova 34's own samples."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from nova_notifier import schemas
from nova_notifier.schemas import _versioned
from tests import nova_samples

# Nova's power_on_share samples carry shares[].export_location, which
# SharePayload 1.0 leaves out on purpose (it can hold credentials): stale
# samples, which the schema rightly refuses.
STALE_SAMPLES = {
    "instance-power_on_share-start.json",
    "instance-power_on_share-end.json",
}
# Samples of payloads this library does not send (see test_nova_samples).
NOT_SENT_PREFIXES = ("instance-volume_swap", "instance-share_")


def test_the_files_are_what_the_classes_give():
    for path, text in _versioned.files().items():
        on_disk = (_versioned.DATA / path).read_text()
        assert on_disk == text, (
            f"{path} drifted: regenerate with bash tools/regen-docs.sh"
        )


def test_every_versioned_event_the_helpers_send_has_a_schema():
    for event_type in _versioned.event_types():
        assert event_type in schemas.event_types()
        jsonschema.Draft202012Validator.check_schema(schemas.schema_for(event_type))
    # notify_about_instance_action() takes any action
    assert schemas.schema_for("instance.lock")["title"].startswith(
        "InstanceActionPayload "
    )


def _samples():
    if not nova_samples.available():
        return ["(no samples)"]
    return [
        n
        for n in nova_samples.names()
        if not n.startswith(NOT_SENT_PREFIXES) and n not in STALE_SAMPLES
    ]


@pytest.mark.skipif(not nova_samples.available(), reason="run tools/nova-samples.sh")
@pytest.mark.parametrize("name", _samples())
def test_the_schema_accepts_novas_own_sample(name):
    sample = nova_samples.load(name)
    schemas.validate(sample["event_type"], sample["payload"])


@pytest.mark.skipif(not nova_samples.available(), reason="run tools/nova-samples.sh")
@pytest.mark.parametrize("name", sorted(STALE_SAMPLES))
def test_the_schema_refuses_the_stale_share_field(name):
    sample = nova_samples.load(name)
    with pytest.raises(jsonschema.ValidationError) as caught:
        schemas.validate(sample["event_type"], sample["payload"])
    assert "export_location" in caught.value.message


@pytest.fixture
def create_end():
    if not nova_samples.available():
        pytest.skip("run tools/nova-samples.sh")
    return nova_samples.load("instance-create-end.json")["payload"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda p: p.__setitem__("nova_object.version", "1.12"), "nova_object.version"),
        (lambda p: p["nova_object.data"].pop("locked"), "nova_object.data"),
        (lambda p: p["nova_object.data"].__setitem__("uuid", "my-vm"), "uuid"),
        (
            lambda p: p["nova_object.data"].__setitem__("auto_disk_config", False),
            "auto_disk_config",
        ),
        (lambda p: p["nova_object.data"].__setitem__("state", "running"), "state"),
        (
            lambda p: p["nova_object.data"].__setitem__(
                "created_at", "2012-10-29 13:42:11"
            ),
            "created_at",
        ),
        (
            lambda p: p["nova_object.data"]["flavor"]["nova_object.data"].__setitem__(
                "swap", "0"
            ),
            "swap",
        ),
        (lambda p: p["nova_object.data"].__setitem__("bandwidth", {}), "bandwidth"),
    ],
)
def test_a_payload_off_the_contract_is_refused(create_end, change, where):
    schemas.validate("instance.create.end", create_end)
    broken = copy.deepcopy(create_end)
    change(broken)
    with pytest.raises(jsonschema.ValidationError) as caught:
        schemas.validate("instance.create.end", broken)
    assert where in caught.value.json_path or where in caught.value.message
