#!/usr/bin/env bash
# Regenerate the README's options table and etc/nova-notifier.conf.sample
# from list_opts() (tests/test_docs.py fails when either drifts).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python - <<'PY'
import re

from nova_notifier import opts

with open("README.md", encoding="utf-8") as f:
    text = f.read()
table = "<!-- options:start -->\n" + opts.options_markdown() + "<!-- options:end -->"
text = re.sub(r"<!-- options:start -->\n.*?<!-- options:end -->", lambda _: table, text, flags=re.S)
with open("README.md", "w", encoding="utf-8") as f:
    f.write(text)
PY
.venv/bin/oslo-config-generator --config-file etc/nova-notifier-config-generator.conf
