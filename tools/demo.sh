#!/usr/bin/env bash
# Install nova-notifier into .venv and run the lifecycle demo (no broker needed).
# Extra arguments go to 'nova-notifier demo', e.g.
#   bash tools/demo.sh --transport-url rabbit://guest:guest@127.0.0.1:5672/
source "$(dirname "$0")/_venv.sh" ""
exec .venv/bin/nova-notifier demo "$@"
