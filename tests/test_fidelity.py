"""Wire fidelity: secrets never leave, harmless values arrive byte for byte.

Each rule is tested in both directions on what the listener receives: a
seeded secret is masked, and text that merely looks like one (a name with
"token" or "password" in it, a fault naming a token service) is unchanged.
Value types reach the wire as their text, aware datetimes in UTC.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import ipaddress
import json
import logging
import pathlib
import re
import subprocess
import sys
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nova_notifier
from nova_notifier import masking
from nova_notifier.serializer import to_wire

SECRET = "Zq9-seeded-secret-77"
UUID = "6a1f0c52-3b7e-4d8a-a9c1-2e4f5a6b7c8d"

HARMLESS = [
    "my-token-server",
    "token-ring-01",
    "db-password-rotator",
    "keystone-auth-proxy",
    "secret-garden",
    "api-key-vault-7",
    "the auth service is down",
    "Unable to reach the token service at http://keystone:5000/v3/auth/tokens",
    "http://glance:9292/v2/images?limit=5&marker=abc",
    "time 12:30:00, state: active",
    "ssh-key-rotation",
    "Error: token expired",
    "Failed to validate token: invalid signature",
    "Invalid password: too short",
    "Error: token: not found",
    "multi_pass: true",
    "urn:token:x",
    "http://host:80/a@b",
    "http://[fe80::1]:8774/v2.1",
    "fe80::1",
    "token-ring-01:8080",
    "token_expires=2026-12-02T05:00:00Z",
]

# (text carrying SECRET, the text that must arrive)
SECRET_TEXTS = [
    (f"password={SECRET}", "password=***"),
    (f"login with password={SECRET} refused", "login with password=*** refused"),
    (f"db_password = '{SECRET}' ok", "db_password = '***' ok"),
    (
        f'{{"password": "{SECRET}", "user": "bob"}}',
        '{"password": "***", "user": "bob"}',
    ),
    (f"{{'adminPass': '{SECRET}'}}", "{'adminPass': '***'}"),
    (
        f"--os-password {SECRET} --os-username bob",
        "--os-password *** --os-username bob",
    ),
    (f"--password={SECRET}", "--password=***"),
    (f"mysql+pymysql://nova:{SECRET}@db/nova", "mysql+pymysql://nova:***@db/nova"),
    (f"GET /v2?token={SECRET}&limit=5", "GET /v2?token=***&limit=5"),
    (f"Authorization: Bearer {SECRET}\nnext", "Authorization: ***\nnext"),
    (f"X-Auth-Token: {SECRET}", "X-Auth-Token: ***"),
    (f"Cookie: session={SECRET}; theme=dark", "Cookie: ***"),
    (f"aws_secret_access_key={SECRET}", "aws_secret_access_key=***"),
    (f"api_key: {SECRET}", "api_key: ***"),
    (f"user_data={SECRET}", "user_data=***"),
    (
        f"amqp://u:{SECRET}@h1:5672,u:{SECRET}@h2:5672/",
        "amqp://u:***@h1:5672,u:***@h2:5672/",
    ),
    (f"mysql+pymysql://nova:ab/{SECRET}==@db/nova", "mysql+pymysql://nova:***@db/nova"),
    (f"rabbit://user:p@{SECRET}@host/", "rabbit://user:***@host/"),
    ('{"user_data": "' + SECRET * 300 + '"} tail', '{"user_data": "***"} tail'),
    (f'password="{SECRET}', "password=***"),
    (f"DBPassword={SECRET}", "DBPassword=***"),
    (f"password2={SECRET}", "password2=***"),
    (f"authorization=Bearer {SECRET}", "authorization=***"),
    (f"{{'password': b'{SECRET}'}}", "{'password': b'***'}"),
    (
        f"private_key: -----BEGIN RSA PRIVATE KEY-----\n{SECRET}\n"
        "-----END RSA PRIVATE KEY-----\nafter",
        "private_key: ***-----END RSA PRIVATE KEY-----\nafter",
    ),
    (
        f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----",
    ),
    (f'"password": ["{SECRET}", "b"], ok', '"password": ***, ok'),
    (f'{{"access": {{"token": {{"id": "{SECRET}"}}}}}}', '{"access": {"token": ***}}'),
    (f"--password=-{SECRET}", "--password=***"),
    (
        f"?temp_url_sig={SECRET}&temp_url_expires=1",
        "?temp_url_sig=***&temp_url_expires=1",
    ),
    (f"sent with X-Auth-Token: {SECRET}", "sent with X-Auth-Token: ***"),
    (
        f'-H "Authorization: Bearer {SECRET}" http://h/v3 done',
        '-H "Authorization: ***" http://h/v3 done',
    ),
]

SECRET_KEYS = [
    "password",
    "admin_password",
    "adminPass",
    "Authorization",
    "cookie",
    "Set-Cookie",
    "X-Auth-Token",
    "x-subject-token",
    "X-Service-Token",
    "api_key",
    "apikey",
    "credential",
    "credentials",
    "private_key",
    "user_data",
    "auth_token",
    "client_secret",
    "DBPassword",
    "MySQLPassword",
    "APIToken",
    "AWSSecretKey",
    "password2",
    "new_password1",
    "passwordConfirmation",
]
HARMLESS_KEYS = [
    "key_name",
    "token_expiry",
    "password_rotator",
    "secret_garden",
    "ssh_key",
    "public_key",
    "auth_url",
    "keystone-auth-proxy",
    "config_drive",
    "multi_pass",
    "secret_ref",
    "encryption_key_id",
    "token_expires",
]


def instance(**more: Any) -> dict[str, Any]:
    return {
        "uuid": UUID,
        "project_id": "tenant-1",
        "user_id": "user-1",
        "display_name": "db-1",
        "hostname": "db-1",
        "host": "compute-2",
        "vm_state": "active",
        "flavor": {"name": "m1.small", "id": 2, "memory_mb": 2048, "root_gb": 20},
        **more,
    }


def one(env) -> Any:
    got = env.settle()
    assert len(got) == 1, [g.event_type for g in got]
    item = got[0]
    json.loads(json.dumps(item.payload, allow_nan=False))
    return item


@pytest.fixture
def compute(fake_env):
    return nova_notifier.get_notifier("compute", "compute-2")


# -- the rules themselves ---------------------------------------------------


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_is_left_alone(text):
    assert masking.mask_text(text) == text


@pytest.mark.parametrize("text,expected", SECRET_TEXTS)
def test_assigned_secrets_are_masked(text, expected):
    assert masking.mask_text(text) == expected
    assert SECRET not in masking.mask_text(text)


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_key_names(key):
    assert masking.is_secret_key(key)


@pytest.mark.parametrize("key", HARMLESS_KEYS)
def test_names_that_merely_contain_a_secret_word(key):
    assert not masking.is_secret_key(key)


HOSTILE_TEXTS = [
    "x" * 400_000 + ":",
    "ab:" * 200_000,
    "a" * 400_000 + "://",
    '"password":"' * 50_000,
    "a://u:" * 100_000,
    "--password " * 50_000,
    '"k":"' * 100_000,
    "password=" * 50_000 + SECRET,
]


def test_hostile_text_is_screened_without_hanging():
    """A rule that backtracked would take hours on these (quadratic in the
    length); each must finish, in a child process with a deadline."""
    script = (
        "import sys, json; from nova_notifier.masking import mask_text\n"
        "texts = json.load(sys.stdin)\n"
        "print(sum(len(mask_text(t)) for t in texts))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(HOSTILE_TEXTS),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0
    assert SECRET not in masking.mask_text(HOSTILE_TEXTS[-1])


# The rules as they were written before the first-character test and the
# possessive names: what they find, the fast form must find.
_PLAIN_RULES = re.compile(masking._RULES.replace("}+", "}"))


def _rule_matches(rules: re.Pattern[str], text: str) -> list[Any]:
    found = []
    pos = 0
    while (match := rules.search(text, pos)) is not None:
        found.append((match.span(), match.groupdict()))
        pos = max(match.end(), pos + 1)
    return found


# Pieces that put secrets, look-alikes and near misses side by side.
_PIECES = st.sampled_from(
    [
        "password=",
        "token: ",
        '"adminPass": "',
        '\\"password\\": \\"',
        "'key' = '",
        "--os-password ",
        "--password=",
        "Authorization: Bearer ",
        "PROXY_AUTHORIZATION=",
        "\u017fet-cookie: ",
        "mysql+pymysql://nova:",
        "@db/nova",
        "?token=",
        "&sig=",
        "-----BEGIN RSA PRIVATE KEY-----",
        "n" * 63,
        "m" * 66,
        "my-token-server",
        "x.y-z_w",
        ": ",
        "=",
        "--",
        "-",
        " ",
        "\t",
        "\n",
        "'",
        '"',
        "\\",
        "(",
        "{",
        "é",
        "9",
        "s3cr3t-value-1234",
        '  File "/srv/app.py", line 12, in call\n    result = app(environ)\n',
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=30), st.text(max_size=30))
def test_fast_rules_find_what_the_plain_rules_find(pieces, noise):
    for text in ("".join(pieces), noise.join(pieces), "".join(pieces) + noise):
        assert _rule_matches(masking._TEXT_RULES, text) == _rule_matches(
            _PLAIN_RULES, text
        )


@pytest.mark.parametrize(
    "text",
    [
        "\u017fet-cookie: session=abc",
        "Set-Cookie: a=b",
        '\\"password\\": \\"x\\"',
        "n" * 63 + "=" + SECRET,  # a 63-character name is not a secret's
        "p" * 55 + "_password =" + SECRET,  # a 64-character one is
        "m" * 70 + "password=" + SECRET,  # inside a longer word: left alone
        "a" * 40 + "://u:" + SECRET + "@h",  # a scheme over 32 characters
        "_token=" + SECRET,
        "x --" + "c" * 64 + " " + SECRET,
        "x_http://u:" + SECRET + "@h",  # "_" may precede a URL, not a name
        "9password=" + SECRET,
        "é_token=" + SECRET,
        "a.b-c password=" + SECRET,
        "e2f3-45b9-cookie: " + SECRET,
        "(-token: " + SECRET,
        "\u017fet-cookie: " + SECRET,
    ],
    ids=range(16),
)
def test_fast_rules_at_their_limits(text):
    assert _rule_matches(masking._TEXT_RULES, text) == _rule_matches(_PLAIN_RULES, text)


# -- on the wire ----------------------------------------------------------------


@pytest.mark.parametrize("name", HARMLESS)
def test_names_reach_the_wire_byte_for_byte(fake_env, compute, name):
    inst = instance(
        display_name=name,
        hostname=name,
        host=name,
        node=name,
        metadata={"role": name, name: "value"},
        system_metadata={"image_name": name},
    )
    nova_notifier.notify_about_instance_usage(
        compute, {}, inst, "create.end", extra_usage_info={"message": name}
    )
    item = one(fake_env)
    payload = item.payload
    assert (item.event_type, item.priority, item.publisher_id) == (
        "compute.instance.create.end",
        "INFO",
        "compute.compute-2",
    )
    for field in ("display_name", "hostname", "host", "node", "message"):
        assert payload[field] == name
    assert payload["metadata"] == {"role": name, name: "value"}
    assert payload["image_meta"] == {"name": name}


@pytest.mark.parametrize("text,expected", SECRET_TEXTS)
def test_secrets_in_free_form_fields_never_reach_the_wire(
    fake_env, compute, text, expected
):
    inst = instance(
        metadata={"note": text, "nested": {"deeper": [text]}},
        system_metadata={"image_description": text},
    )
    nova_notifier.notify_about_instance_usage(
        compute, {}, inst, "rebuild.end", extra_usage_info={"detail": text}
    )
    item = one(fake_env)
    assert SECRET not in json.dumps(item.payload)
    assert item.payload["metadata"] == {
        "note": expected,
        "nested": {"deeper": [expected]},
    }
    assert item.payload["image_meta"] == {"description": expected}
    assert item.payload["detail"] == expected


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys_are_masked_at_any_depth(fake_env, compute, key):
    inst = instance(metadata={key: SECRET, "group": {key: SECRET, "ok": "kept"}})
    nova_notifier.notify_about_instance_usage(
        compute, {}, inst, "create.end", extra_usage_info={"extra": {key: SECRET}}
    )
    payload = one(fake_env).payload
    assert SECRET not in json.dumps(payload)
    assert payload["metadata"] == {key: "***", "group": {key: "***", "ok": "kept"}}
    assert payload["extra"] == {key: "***"}


@pytest.mark.parametrize("key", HARMLESS_KEYS)
def test_harmless_keys_keep_their_values(fake_env, compute, key):
    inst = instance(metadata={key: "value-1"})
    nova_notifier.notify_about_instance_usage(compute, {}, inst, "create.end")
    assert one(fake_env).payload["metadata"] == {key: "value-1"}


def test_headers_given_as_pairs_lose_secret_values(fake_env, compute):
    headers = [
        ("X-Auth-Token", SECRET),
        ("X-Trace", "token-ring-01"),
        ["Cookie", SECRET],
    ]
    nova_notifier.notify_about_instance_usage(
        compute, {}, instance(), "create.end", extra_usage_info={"headers": headers}
    )
    assert one(fake_env).payload["headers"] == [
        ["X-Auth-Token", "***"],
        ["X-Trace", "token-ring-01"],
        ["Cookie", "***"],
    ]


def test_fields_the_library_builds_are_not_screened(fake_env, compute):
    # An assignment-like display name is a name: carried as given.
    name = "password=not-really"
    nova_notifier.notify_about_instance_usage(
        compute, {}, instance(display_name=name), "create.end"
    )
    assert one(fake_env).payload["display_name"] == name


def test_injected_files_keep_paths_lose_contents(fake_env, compute):
    extra = {
        "injected_files": [("/etc/motd", SECRET), ["/root/.ssh/id", SECRET]],
        "personality": [{"path": "/etc/app.conf", "contents": SECRET}],
    }
    nova_notifier.notify_about_instance_usage(
        compute, {}, instance(), "rebuild.start", extra_usage_info=extra
    )
    payload = one(fake_env).payload
    assert SECRET not in json.dumps(payload)
    assert payload["injected_files"] == [["/etc/motd", "***"], ["/root/.ssh/id", "***"]]
    assert payload["personality"] == [{"path": "/etc/app.conf", "contents": "***"}]


def test_fault_text_naming_a_token_service_arrives_unchanged(fake_env, compute):
    class TokenServiceDown(Exception):
        def format_message(self):
            return "Unable to reach the token service at http://keystone:5000"

    nova_notifier.notify_about_instance_usage(
        compute, {}, instance(), "create.error", fault=TokenServiceDown()
    )
    item = one(fake_env)
    assert item.priority == "ERROR"
    assert item.payload["message"] == (
        "Unable to reach the token service at http://keystone:5000"
    )
    assert item.payload["exception"] == (
        "TokenServiceDown: Unable to reach the token service at http://keystone:5000"
    )


def test_decorator_arguments(fake_env):
    def connect(host, password, note=None, **headers):
        return host

    wrapped = nova_notifier.notify_decorator("svc.connect", connect)
    wrapped(
        "my-token-server",
        SECRET,
        note=f"retry with --password {SECRET}",
        **{"X-Auth-Token": SECRET, "X-Trace": "token-ring-01"},
    )
    item = one(fake_env)
    assert item.event_type == "svc.connect"
    assert item.payload == {
        "args": ["my-token-server", "***"],
        "kwarg": {
            "note": "retry with --password ***",
            "X-Auth-Token": "***",
            "X-Trace": "token-ring-01",
        },
    }


def test_api_fault_url_masks_query_secrets_only(fake_env):
    fake_env.override("notify_on_api_faults", True, group="notifications")
    nova_notifier.send_api_fault(
        f"http://api/servers/my-token-server?token={SECRET}&limit=2",
        500,
        "HTTP 500 password reset service",
    )
    item = one(fake_env)
    assert (item.event_type, item.priority) == ("api.fault", "ERROR")
    assert item.payload == {
        "url": "http://api/servers/my-token-server?token=***&limit=2",
        "status": 500,
        "exception": "HTTP 500 password reset service",
    }


def test_a_plain_payload_from_the_caller_is_screened(fake_env):
    notifier = nova_notifier.get_notifier("svc", "h1")
    notifier.info(
        {}, "svc.event", {"name": "my-token-server", "cmd": f"password={SECRET}"}
    )
    item = one(fake_env)
    assert (item.publisher_id, item.payload) == (
        "svc.h1",
        {"name": "my-token-server", "cmd": "password=***"},
    )


# -- value types --------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


TYPED = [
    (ipaddress.ip_address("10.0.0.5"), "10.0.0.5"),
    (ipaddress.ip_address("fe80::1"), "fe80::1"),
    (ipaddress.ip_network("10.0.0.0/24"), "10.0.0.0/24"),
    (ipaddress.ip_interface("10.0.0.5/24"), "10.0.0.5/24"),
    (uuid.UUID(UUID), UUID),
    (decimal.Decimal("1.10"), "1.10"),
    (pathlib.PurePosixPath("/var/lib/nova"), "/var/lib/nova"),
    (Color.RED, "red"),
    (b"bytes-value", "bytes-value"),
    (datetime.date(2012, 3, 5), "2012-03-05"),
    (float("nan"), "NaN"),
    (float("inf"), "Infinity"),
    ("lone \ud800 surrogate", "lone \ufffd surrogate"),
]


@pytest.mark.parametrize("value,text", TYPED, ids=[repr(t[0]) for t in TYPED])
def test_value_types_reach_the_wire_as_their_text(fake_env, compute, value, text):
    inst = instance(metadata={"v": value}, access_ip_v4=value)
    nova_notifier.notify_about_instance_usage(compute, {}, inst, "create.end")
    payload = one(fake_env).payload
    assert payload["metadata"] == {"v": text}
    assert payload["access_ip_v4"] == text


def test_aware_datetimes_are_converted_to_utc(fake_env, compute):
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    launched = datetime.datetime(2012, 3, 5, 14, 0, 0, 250, tzinfo=tz)
    inst = instance(launched_at=launched, metadata={"when": launched})
    nova_notifier.notify_about_instance_usage(compute, {}, inst, "create.end")
    payload = one(fake_env).payload
    assert payload["launched_at"] == "2012-03-05T08:30:00.000250"
    assert payload["metadata"] == {"when": "2012-03-05T08:30:00.000250"}


def test_objects_without_faithful_text_become_placeholders():
    class Opaque:
        def __str__(self):
            return f"password={SECRET}"

    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert to_wire({"o": Opaque(), "c": cyclic}) == {"o": "<Opaque>", "c": ["<list>"]}


def test_the_callers_values_are_not_changed(fake_env, compute):
    metadata = {"password": SECRET, "note": f"token={SECRET}"}
    inst = instance(metadata=metadata)
    nova_notifier.notify_about_instance_usage(compute, {}, inst, "create.end")
    one(fake_env)
    assert metadata == {"password": SECRET, "note": f"token={SECRET}"}


# -- logs -----------------------------------------------------------------------


def test_fault_wrapper_traceback_log_carries_no_password(fake_env, caplog):
    from webob import Request

    from nova_notifier import FaultWrapper

    def app(environ, start_response):
        raise RuntimeError(f"cannot connect mysql+pymysql://nova:{SECRET}@db/nova")

    caplog.set_level(logging.DEBUG)
    # The demo command, run in process by test_paste_pipeline, leaves this
    # logger at CRITICAL (cli.main() quiets it); caplog restores it after.
    caplog.set_level(logging.DEBUG, logger="nova_notifier.faultwrap")
    resp = Request.blank("/servers").get_response(FaultWrapper(app))
    assert resp.status_int == 500
    text = caplog.text
    assert "Traceback" in text and "mysql+pymysql://nova:***@db/nova" in text
    assert SECRET not in text


def test_drop_log_lines_are_masked(fake_env, caplog):
    caplog.set_level(logging.DEBUG)
    notifier = nova_notifier.get_notifier("svc", "h1")
    # An unknown priority is a drop whose log line quotes it.
    notifier.notify({}, "svc.x", {"k": "v"}, f"password={SECRET}")
    assert nova_notifier.stats()["dropped"] == 1
    assert "dropped svc.x notification" in caplog.text
    assert "password=***" in caplog.text
    assert SECRET not in caplog.text


def test_not_initialised_drops_are_logged_at_a_bounded_rate(caplog):
    nova_notifier.cleanup()
    caplog.set_level(logging.WARNING, logger="nova_notifier")
    notifier = nova_notifier.Notifier("svc.h1")
    for _ in range(50):
        notifier.info({}, "svc.x", {"n": 1})
    lines = [
        r for r in caplog.records if "init() has not been called" in r.getMessage()
    ]
    assert len(lines) == 1


def test_broker_wire_carries_names_unchanged(broker_env):
    compute = nova_notifier.get_notifier("compute", "token-ring-01")
    inst = instance(
        display_name="my-token-server",
        hostname="token-ring-01",
        metadata={"rotator": "db-password-rotator", "password": SECRET},
    )
    nova_notifier.notify_about_instance_usage(compute, {}, inst, "create.end")
    item = one(broker_env)
    assert (item.event_type, item.priority, item.publisher_id) == (
        "compute.instance.create.end",
        "INFO",
        "compute.token-ring-01",
    )
    assert item.payload["display_name"] == "my-token-server"
    assert item.payload["hostname"] == "token-ring-01"
    assert item.payload["metadata"] == {
        "rotator": "db-password-rotator",
        "password": "***",
    }
