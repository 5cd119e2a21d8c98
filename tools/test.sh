#!/usr/bin/env bash
# Install nova-notifier with its test tools into .venv, make sure RabbitMQ
# answers on 127.0.0.1:5672, then run the linters, the type checker and the
# test suite (unit tests on fake://, integration tests on the real broker).
source "$(dirname "$0")/_venv.sh" "[test]"
bash tools/ensure-broker.sh
bash tools/nova-samples.sh >/dev/null
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy nova_notifier
exec .venv/bin/python -m pytest "$@"
