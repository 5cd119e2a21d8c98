#!/usr/bin/env bash
# A throwaway RabbitMQ cluster on this machine, next to the default broker.
#
# The machine's own broker (rabbit@localhost on 127.0.0.1:5672) is never
# stopped, reconfigured or called by this script: every node here has its own
# name, ports, config files, data and logs under RABBIT_CLUSTER_DIR, and every
# CLI call names its node with -n. Processes are ended only by the pids of
# nodes this script started (recognised by a marker in their environment).
#
# Usage: tools/rabbit-cluster.sh COMMAND
#   up                 start the nodes that are not running, join them to node 1,
#                      wait until all run clustered; last stdout line: the URL
#   down [--purge]     stop every node (TERM, then KILL after a deadline), wait
#                      until their ports are closed; --purge deletes the dir
#   purge              the same as down --purge
#   kill N             kill -9 node N, wait until its ports are closed
#   start N            start node N again, wait until it is back in the cluster
#   status             one line per node; exit 0 only when all run
#   url [--tls]        the oslo.messaging transport URL (--tls: the TLS listeners,
#                      rabbit://...:5691,.../?ssl=1&ssl_ca_file=TLS_DIR/ca.pem)
#   pid N              node N's beam pid
#   ctl [-N K] ARGS    rabbitmqctl ARGS against node K (default 1)
#
# Settings (environment):
#   RABBIT_CLUSTER_DIR     scratch dir (default ${TMPDIR:-/tmp}/nova-notifier-cluster-UID)
#   RABBIT_CLUSTER_NODES   number of nodes (3)
#   RABBIT_CLUSTER_PREFIX  node names PREFIX-1@localhost ... (nn)
#   RABBIT_CLUSTER_PORT    AMQP port of node 1 (5681); node N listens on PORT+N-1,
#                          TLS on PORT+10+N-1, distribution on PORT+20000+N-1;
#                          CLI calls take distribution ports PORT+40000..+40009
#   RABBIT_CLUSTER_TLS_DIR a dir with ca.pem, cert.pem, key.pem: adds TLS listeners
#   RABBIT_CLUSTER_TLS_VERIFY              verify_none (default) or verify_peer
#   RABBIT_CLUSTER_TLS_FAIL_IF_NO_PEER_CERT false (default) or true
#   RABBIT_CLUSTER_TIMEOUT deadline in seconds for each wait (120)
#   RABBIT_CLUSTER_NICE    niceness of the nodes, the CLI calls and this script's
#                          own polling (19): they stand for other machines, and on
#                          a 2-core box must not take the CPU of the service whose
#                          call times a test measures (at 10 they still delayed its
#                          threads by 5-25 ms when a node started)
#   RABBIT_CLUSTER_SCHED   idle (default): the nodes, the CLI calls and this
#                          script's own polling also run under SCHED_IDLE, so
#                          that none of their threads waking up preempts one of
#                          the service's (at nice 19 alone a node still took a
#                          core from the emitting thread for up to a 4 ms tick,
#                          and so did this script's polls); other: nice only
#   RABBIT_CLUSTER_CPUS    a taskset CPU list (e.g. 1 or 2-3) the nodes and CLI
#                          calls are confined to (default: none), keeping them
#                          off the cores of the service under test
set -euo pipefail

DIR=${RABBIT_CLUSTER_DIR:-${TMPDIR:-/tmp}/nova-notifier-cluster-$(id -u)}
NODES=${RABBIT_CLUSTER_NODES:-3}
PREFIX=${RABBIT_CLUSTER_PREFIX:-nn}
BASE_PORT=${RABBIT_CLUSTER_PORT:-5681}
TLS_DIR=${RABBIT_CLUSTER_TLS_DIR:-}
TLS_VERIFY=${RABBIT_CLUSTER_TLS_VERIFY:-verify_none}
TLS_FAIL_NO_CERT=${RABBIT_CLUSTER_TLS_FAIL_IF_NO_PEER_CERT:-false}
TIMEOUT=${RABBIT_CLUSTER_TIMEOUT:-120}
NICE=${RABBIT_CLUSTER_NICE:-19}
SCHED=${RABBIT_CLUSTER_SCHED:-idle}
case $SCHED in idle) LOWER=(chrt --idle 0) ;; other) LOWER=() ;; *) echo "rabbit-cluster: RABBIT_CLUSTER_SCHED must be idle or other" >&2 && exit 2 ;; esac
CPUS=${RABBIT_CLUSTER_CPUS:-}
if [ -n "$CPUS" ]; then
  taskset -c "$CPUS" true 2>/dev/null || { echo "rabbit-cluster: RABBIT_CLUSTER_CPUS=$CPUS is not a CPU list taskset takes here" >&2 && exit 2; }
  LOWER+=(taskset -c "$CPUS")
fi
renice -n "$NICE" -p $$ >/dev/null 2>&1 || true # the waits and polls below too
if [ "$SCHED" = idle ] && ! chrt --idle -p 0 $$ >/dev/null 2>&1; then
  echo "rabbit-cluster: could not put this script under SCHED_IDLE; its polls run at nice $NICE only" >&2
fi
RMQ_BIN=/usr/lib/rabbitmq/bin # not /usr/sbin: those wrappers drop RABBITMQ_*
COOKIE_SRC=/var/lib/rabbitmq/.erlang.cookie
STAMP=.rabbit-cluster-dir # marks a dir as ours, so that purge may delete it
declare -A LAUNCHED=()    # node number -> pid of the launcher started by this run

log() { printf 'rabbit-cluster[%s] +%ss: %s\n' "$PREFIX" "$SECONDS" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

node_name() { echo "$PREFIX-$1@localhost"; }
amqp_port() { echo $((BASE_PORT + $1 - 1)); }
tls_port() { echo $((BASE_PORT + 10 + $1 - 1)); }
dist_port() { echo $((BASE_PORT + 20000 + $1 - 1)); }
node_dir() { echo "$DIR/$PREFIX-$1"; }
# What a node's beam process carries in its environment: it tells our nodes
# from every other beam.smp on the machine (the default broker, CLI calls).
marker() { echo "RABBIT_CLUSTER_SERVER=$(node_dir "$1")"; }
node_ports() {
  amqp_port "$1"
  dist_port "$1"
  if [ -n "$TLS_DIR" ]; then tls_port "$1"; fi
}

check_settings() {
  [[ $NODES =~ ^[1-9][0-9]*$ ]] || die "RABBIT_CLUSTER_NODES must be a positive number"
  [[ $BASE_PORT =~ ^[0-9]+$ ]] || die "RABBIT_CLUSTER_PORT must be a number"
  [[ $PREFIX =~ ^[A-Za-z0-9_]+(-?[A-Za-z0-9_]+)*$ ]] || die "bad RABBIT_CLUSTER_PREFIX"
  [ "$PREFIX" != rabbit ] || die "the prefix 'rabbit' is the default broker's"
  local n port
  for n in $(seq 1 "$NODES"); do
    for port in $(node_ports "$n"); do
      case $port in
        4369 | 5672 | 25672) die "port $port belongs to epmd or the default broker" ;;
      esac
      [ "$port" -lt 65536 ] || die "port $port is out of range"
    done
  done
}

check_node_number() {
  [[ ${1:-} =~ ^[1-9][0-9]*$ ]] && [ "$1" -le "$NODES" ] ||
    die "node number must be 1..$NODES, got '${1:-}'"
}

# --- processes and ports --------------------------------------------------

# True when pid is a live (not zombie) process of node $2 started by us.
is_our_beam() {
  local pid=$1 n=$2 comm stat
  [ -n "$pid" ] || return 1
  { read -r comm <"/proc/$pid/comm" && read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
  [ "$comm" = beam.smp ] || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qxF "$(marker "$n")"
}

# Node N's beam pid, or fail. The node's pid file first; before it is written
# (early boot) look for the process by its marker.
node_pid() {
  local n=$1 pid env
  pid=$(cat "$(node_dir "$n")/beam.pid" 2>/dev/null || true)
  if is_our_beam "$pid" "$n"; then
    echo "$pid"
    return 0
  fi
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}
    pid=${pid%/environ}
    if is_our_beam "$pid" "$n"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# True while something listens on TCP port $1 (any local address). ss asks
# the kernel for listening sockets only; /proc/net/tcp (the fallback) walks
# every bucket of the connection table, ~4 ms of CPU a read here that the
# kernel (preemption model "none") does not interrupt for the service whose
# calls a test times.
listening_in_proc() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p="$hex" 'FNR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == p) f = 1 }
    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
listening() {
  local out
  if out=$(ss -Htn state listening "sport = :$1" 2>/dev/null); then
    [ -n "$out" ]
  else # no ss, or one that does not take this query
    listening_in_proc "$1"
  fi
}

node_ports_closed() {
  local port
  for port in $(node_ports "$1"); do
    if listening "$port"; then return 1; fi
  done
}

# wait_for SECONDS WHAT COMMAND...: poll COMMAND until it succeeds.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "gave up after ${limit}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# --- environment, config --------------------------------------------------

# Export everything a node (and a CLI call against it) needs; run in a
# subshell. Inherited RABBITMQ_* variables are dropped first so that nothing
# from the caller points a node at the default broker's files.
node_env() {
  local n=$1 nd
  nd=$(node_dir "$n")
  local var
  for var in $(compgen -e | grep -E '^(RABBITMQ_|ERL_)' || true); do
    unset "$var"
  done
  export HOME="$DIR/home"
  export RABBITMQ_CONF_ENV_FILE="$nd/rabbitmq-env.conf"
  export RABBITMQ_CONFIG_FILE="$nd/rabbitmq.conf"
  export RABBITMQ_CONFIG_FILES="$nd/conf.d"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$nd/advanced.config"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$nd/enabled_plugins"
  export RABBITMQ_NODENAME
  RABBITMQ_NODENAME=$(node_name "$n")
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT
  RABBITMQ_NODE_PORT=$(amqp_port "$n")
  export RABBITMQ_DIST_PORT
  RABBITMQ_DIST_PORT=$(dist_port "$n")
  export RABBITMQ_MNESIA_BASE="$nd/mnesia"
  export RABBITMQ_LOG_BASE="$nd/log"
  export RABBITMQ_PID_FILE="$nd/beam.pid"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  # CLI calls are Erlang nodes too: their own port range, on loopback
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_DIST_PORT_MIN=$((BASE_PORT + 40000))
  export RABBITMQ_CTL_DIST_PORT_MAX=$((BASE_PORT + 40009))
  export ERL_EPMD_ADDRESS=127.0.0.1
}

prepare() {
  if [ -d "$DIR" ] && [ ! -e "$DIR/$STAMP" ] && [ -n "$(ls -A "$DIR")" ]; then
    die "$DIR exists and was not made by this script"
  fi
  mkdir -p "$DIR/home"
  touch "$DIR/$STAMP"
  if [ ! -s "$DIR/home/.erlang.cookie" ]; then
    [ -r "$COOKIE_SRC" ] || die "cannot read the Erlang cookie $COOKIE_SRC"
    install -m 0400 "$COOKIE_SRC" "$DIR/home/.erlang.cookie"
  fi
  if [ -n "$TLS_DIR" ]; then
    local f
    for f in ca.pem cert.pem key.pem; do
      [ -r "$TLS_DIR/$f" ] || die "RABBIT_CLUSTER_TLS_DIR has no readable $f"
    done
    case $TLS_VERIFY in verify_none | verify_peer) ;; *) die "bad TLS verify mode" ;; esac
    case $TLS_FAIL_NO_CERT in true | false) ;; *) die "bad TLS fail_if_no_peer_cert" ;; esac
  fi
  local n nd
  for n in $(seq 1 "$NODES"); do
    nd=$(node_dir "$n")
    mkdir -p "$nd/conf.d" "$nd/mnesia" "$nd/log"
    : >"$nd/rabbitmq-env.conf"
    echo '[].' >"$nd/enabled_plugins"
    echo '[].' >"$nd/advanced.config"
    {
      echo "# written by tools/rabbit-cluster.sh; the TCP listener comes from"
      echo "# RABBITMQ_NODE_IP_ADDRESS/RABBITMQ_NODE_PORT"
      echo "log.console = false"
      echo "log.file.level = info"
      if [ -n "$TLS_DIR" ]; then
        echo "listeners.ssl.1 = 127.0.0.1:$(tls_port "$n")"
        echo "ssl_options.cacertfile = $TLS_DIR/ca.pem"
        echo "ssl_options.certfile = $TLS_DIR/cert.pem"
        echo "ssl_options.keyfile = $TLS_DIR/key.pem"
        echo "ssl_options.verify = $TLS_VERIFY"
        echo "ssl_options.fail_if_no_peer_cert = $TLS_FAIL_NO_CERT"
      fi
    } >"$nd/rabbitmq.conf"
  done
}

# --- rabbitmqctl ------------------------------------------------------------

# ctl N ARGS...: rabbitmqctl against node N, never without -n, with a deadline.
ctl() {
  local n=$1
  shift
  (
    node_env "$n"
    exec "${LOWER[@]}" nice -n "$NICE" timeout $((TIMEOUT + 30)) "$RMQ_BIN/rabbitmqctl" -q -n "$(node_name "$n")" "$@"
  )
}

# ctl_quiet N ARGS...: ctl, its output shown only when it fails (start_app
# prints harmless errors about tables of peers that are still starting).
ctl_quiet() {
  local out
  out=$(ctl "$@" 2>&1) || {
    printf '%s\n' "$out" >&2
    die "rabbitmqctl -n $(node_name "$1") ${*:2} failed"
  }
}

# The nodes node N sees as running cluster members (Erlang list on one line).
running_members() { ctl "$1" eval 'rabbit_mnesia:cluster_nodes(running).' 2>/dev/null | tr -d ' \n'; }
all_members() { ctl "$1" eval 'rabbit_mnesia:cluster_nodes(all).' 2>/dev/null | tr -d ' \n'; }

# member LIST N: LIST (Erlang list of atoms) names node N.
member() { [[ $1 == *"'$(node_name "$2")'"* ]]; }

all_clustered() {
  local seen n
  seen=$(running_members 1) || return 1
  for n in $(seq 1 "$NODES"); do
    member "$seen" "$n" || return 1
  done
}

# --- single node operations -----------------------------------------------

launch() {
  local n=$1 nd
  nd=$(node_dir "$n")
  wait_for "$TIMEOUT" "the ports of $(node_name "$n") to be free" node_ports_closed "$n" ||
    die "a port of $(node_name "$n") ($(node_ports "$n" | tr '\n' ' ')) is taken"
  rm -f "$nd/beam.pid"
  log "starting $(node_name "$n") on 127.0.0.1:$(amqp_port "$n")"
  (
    node_env "$n"
    export "$(marker "$n")"
    cd "$nd"
    # rabbitmq-server stays as a small parent shell; the beam is its child.
    # setsid + redirections: no terminal, no pipes of the caller kept open.
    # A new session is a new scheduler autogroup (kernel.sched_autogroup_enabled),
    # and between autogroups the threads' niceness counts for nothing: each
    # node's group would get as much CPU as the whole service under test. The
    # group's own nice is set from inside the new session, before the exec.
    exec "${LOWER[@]}" nice -n "$NICE" setsid bash -c \
      '{ echo "$1" >/proc/self/autogroup; } 2>/dev/null || true; shift; exec "$@"' \
      autogroup-nice "$NICE" "$RMQ_BIN/rabbitmq-server" </dev/null >>"$nd/log/console.log" 2>&1
  ) &
  LAUNCHED[$n]=$!
}

# True once node N runs and accepts AMQP connections; fails fast if it died.
node_up() {
  local n=$1
  if ! node_pid "$n" >/dev/null; then
    # no beam yet: still booting while the launcher we started lives
    if [ -n "${LAUNCHED[$n]:-}" ] && ! kill -0 "${LAUNCHED[$n]}" 2>/dev/null; then
      return 2
    fi
    return 1
  fi
  listening "$(amqp_port "$n")"
}

# Wait until node N listens for AMQP (the last step of its boot).
await_listening() {
  local n=$1 deadline=$((SECONDS + TIMEOUT)) rc
  while true; do
    rc=0
    node_up "$n" || rc=$?
    [ "$rc" -eq 0 ] && break
    if [ "$rc" -eq 2 ] || [ "$SECONDS" -ge "$deadline" ]; then
      log "$(node_name "$n") did not come up; end of its log:"
      tail -n 20 "$(node_dir "$n")/log/console.log" "$(node_dir "$n")/log/"*.log >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# await_started N...: rabbitmqctl await_startup on the nodes, in parallel.
await_started() {
  local n pids=() rc=0
  for n in "$@"; do
    ctl "$n" await_startup --timeout "$TIMEOUT" >/dev/null &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || rc=1; done
  return "$rc"
}

stop_nodes() { # stop_nodes N...: TERM, wait, KILL what is left, wait for ports
  local n pid pids=() left
  for n in "$@"; do
    if pid=$(node_pid "$n"); then
      log "stopping $(node_name "$n") (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$n:$pid")
    fi
  done
  local deadline=$((SECONDS + 30))
  while true; do
    left=()
    for item in ${pids[@]+"${pids[@]}"}; do
      if is_our_beam "${item#*:}" "${item%%:*}"; then left+=("$item"); fi
    done
    [ ${#left[@]} -eq 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      for item in "${left[@]}"; do
        log "$(node_name "${item%%:*}") did not stop in 30s: kill -9 ${item#*:}"
        kill -KILL "${item#*:}" 2>/dev/null || true
      done
      deadline=$((SECONDS + TIMEOUT))
    fi
    sleep 0.2
  done
  for n in "$@"; do
    wait_for "$TIMEOUT" "the ports of $(node_name "$n") to close" node_ports_closed "$n"
  done
}

transport_url() {
  local tls=$1 n port hosts=()
  for n in $(seq 1 "$NODES"); do
    if [ "$tls" = 1 ]; then port=$(tls_port "$n"); else port=$(amqp_port "$n"); fi
    hosts+=("guest:guest@127.0.0.1:$port")
  done
  local IFS=,
  if [ "$tls" = 1 ]; then
    # oslo.messaging reads query parameters as [oslo_messaging_rabbit] options:
    # ssl=1 is ssl = true, ssl_ca_file the CA it verifies the broker with
    echo "rabbit://${hosts[*]}/?ssl=1&ssl_ca_file=$TLS_DIR/ca.pem"
  else
    echo "rabbit://${hosts[*]}/"
  fi
}

# --- commands ---------------------------------------------------------------

cmd_up() {
  prepare
  local n start=$SECONDS
  for n in $(seq 1 "$NODES"); do
    if node_pid "$n" >/dev/null; then
      log "$(node_name "$n") is running"
    else
      launch "$n"
    fi
  done
  # boot in parallel: a node restarted after a full stop waits for its peers
  for n in $(seq 1 "$NODES"); do
    await_listening "$n" || die "$(node_name "$n") did not start"
  done
  if [ ${#LAUNCHED[@]} -gt 0 ]; then
    await_started "${!LAUNCHED[@]}" || die "a node did not finish its boot"
  fi
  local members
  members=$(all_members 1) || die "cannot ask $(node_name 1) for its cluster"
  for n in $(seq 2 "$NODES"); do
    if ! member "$members" "$n"; then
      log "joining $(node_name "$n") to $(node_name 1)"
      # what stop_app, join_cluster and start_app do, in one CLI call
      ctl_quiet "$n" eval "ok = rabbit:stop(),
        case rabbit_mnesia:join_cluster('$(node_name 1)', disc) of
          ok -> ok; {ok, already_member} -> ok end,
        ok = rabbit:start()."
    fi
  done
  wait_for "$TIMEOUT" "all $NODES nodes to run clustered" all_clustered ||
    die "the cluster did not form"
  log "$NODES nodes up and clustered in $((SECONDS - start))s"
  transport_url 0
}

cmd_down() {
  local purge=0
  case ${1:-} in --purge) purge=1 ;; "") ;; *) die "down takes only --purge" ;; esac
  stop_nodes $(seq 1 "$NODES")
  log "all nodes stopped"
  if [ "$purge" = 1 ] && [ -d "$DIR" ]; then
    [ -e "$DIR/$STAMP" ] || die "$DIR was not made by this script; not deleting it"
    rm -rf "$DIR"
    log "deleted $DIR"
  fi
}

cmd_kill() {
  check_node_number "${1:-}"
  local n=$1 pid
  pid=$(node_pid "$n") || die "$(node_name "$n") is not running"
  log "kill -9 $(node_name "$n") (pid $pid)"
  kill -KILL "$pid"
  wait_for "$TIMEOUT" "pid $pid to end" eval "! is_our_beam $pid $n" || exit 1
  wait_for "$TIMEOUT" "the ports of $(node_name "$n") to close" node_ports_closed "$n" || exit 1
}

cmd_start() {
  check_node_number "${1:-}"
  local n=$1 start=$SECONDS
  prepare
  if node_pid "$n" >/dev/null; then
    log "$(node_name "$n") is running"
  else
    launch "$n"
  fi
  await_listening "$n" && await_started "$n" || die "$(node_name "$n") did not start"
  local other
  for other in $(seq 1 "$NODES"); do
    [ "$other" != "$n" ] && node_pid "$other" >/dev/null && break
    other=
  done
  if [ -n "$other" ]; then
    # back in the cluster: a running peer counts it among the running members
    wait_for "$TIMEOUT" "$(node_name "$n") to rejoin" \
      eval "member \"\$(running_members $other)\" $n" || die "$(node_name "$n") did not rejoin"
  fi
  log "$(node_name "$n") up in $((SECONDS - start))s"
}

cmd_status() {
  local n pid state all=0
  for n in $(seq 1 "$NODES"); do
    if pid=$(node_pid "$n") && listening "$(amqp_port "$n")"; then
      state=running
    else
      state=stopped
      all=1
    fi
    printf '%s port=%s dist=%s pid=%s %s\n' "$(node_name "$n")" "$(amqp_port "$n")" \
      "$(dist_port "$n")" "${pid:--}" "$state"
  done
  return "$all"
}

cmd_url() {
  case ${1:-} in
    "") transport_url 0 ;;
    --tls)
      [ -n "$TLS_DIR" ] || die "RABBIT_CLUSTER_TLS_DIR is not set: no TLS listeners"
      transport_url 1
      ;;
    *) die "url takes only --tls" ;;
  esac
}

cmd_pid() {
  check_node_number "${1:-}"
  node_pid "$1" || die "$(node_name "$1") is not running"
}

cmd_ctl() {
  local n=1
  if [ "${1:-}" = -N ]; then
    n=${2:-}
    shift 2 || true
  fi
  check_node_number "$n"
  [ -d "$DIR/home" ] || die "no cluster dir $DIR (run up first)"
  ctl "$n" "$@"
}

main() {
  check_settings
  local cmd=${1:-}
  shift || true
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    purge) cmd_down --purge ;;
    kill) cmd_kill "$@" ;;
    start) cmd_start "$@" ;;
    status) cmd_status ;;
    url) cmd_url "$@" ;;
    pid) cmd_pid "$@" ;;
    ctl) cmd_ctl "$@" ;;
    *)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
