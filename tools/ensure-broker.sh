#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on 127.0.0.1:5672; start one if not.
set -euo pipefail
answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if answers; then
  exit 0
fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "RabbitMQ is not installed; installing it from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi
echo "starting rabbitmq-server" >&2
rabbitmq-server -detached
timeout 120 rabbitmqctl await_startup >/dev/null
for _ in $(seq 1 60); do
  answers && exit 0
  sleep 1
done
echo "RabbitMQ did not start answering on 127.0.0.1:5672" >&2
exit 1
