#!/usr/bin/env bash
# Install into .venv, make sure RabbitMQ answers, run every benchmark.
# Each prints its table and writes bench/results/<name>.json.
#   bash bench/run_all.sh            # the full run (about 15 minutes)
#   bash bench/run_all.sh --quick    # a smoke run
source "$(dirname "$0")/../tools/_venv.sh" ""
bash tools/ensure-broker.sh
for script in caller_cost vs_nova faultwrap_overhead payload_cost versioned latency_read latency_live_memory throughput outage cluster; do
  echo
  echo "=== bench/$script.py $*"
  .venv/bin/python "bench/$script.py" "$@"
done
echo
echo "=== issue 11 and 12 targets (bench/targets.py)"
.venv/bin/python bench/targets.py
