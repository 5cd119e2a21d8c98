#!/usr/bin/env bash
# Fetch Nova 34.0.0's notification samples (doc/notification_samples, in the
# sdist on PyPI, not in the wheel) into .cache/, once. The tests compare the
# versioned messages with them; the library never needs them.
#   bash tools/nova-samples.sh        # prints the samples directory
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION=${NOVA_SAMPLES_VERSION:-34.0.0}
DEST=.cache/nova-$VERSION
if [ ! -f "$DEST/notification_samples/instance-create-end.json" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python=.venv/bin/python
  [ -x "$python" ] || python=python3
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary :all: "nova==$VERSION" -d "$tmp" >&2
  tar -xzf "$tmp"/nova-"$VERSION".tar.gz -C "$tmp" "nova-$VERSION/doc/notification_samples"
  mkdir -p "$DEST"
  rm -rf "$DEST/notification_samples"
  mv "$tmp/nova-$VERSION/doc/notification_samples" "$DEST/"
fi
echo "$PWD/$DEST/notification_samples"
