#!/usr/bin/env bash
# Regenerate the README's options table, etc/nova-notifier.conf.sample and
# the versioned payloads' schemas
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
# The versioned payloads' JSON Schemas, from the payload classes
# (tests/test_schemas_versioned.py fails when they drift).
.venv/bin/python -m nova_notifier.schemas._versioned
