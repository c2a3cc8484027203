#!/usr/bin/env bash
# Runs the sbload benchmark scenarios of BENCHMARKS.md on loopback only and
# writes one JSON report per run plus summary.md into bench/results/<stamp>/.
#
#   bench/run.sh                 every scenario
#   bench/run.sh baselines embedded idle rabbit-inbound rabbit
#   bench/run.sh ratio           two nodes over the forwarder, back to back (issue 16)
#
# Knobs (environment): DUR (send phase per point, default 5s), RATES
# (open-loop sweep, default "250 500 1000 2000 3000 4000"), RABBIT_RATES
# (default "250 500 1000 2000 3000"), MAX_WORKERS (closed-loop webhook workers
# in the RabbitMQ scenarios, default 256), IDLE_AGENTS (default 10000), AMQP_URL
# (default amqp://guest:guest@127.0.0.1:5672/), NODES ("1 2 3"), IDLE_FOR
# (how long the idle agents stay connected before RSS is read, default 15s).
#
# Every run starts fresh nodes (new data directories, a new RabbitMQ
# exchange), so points do not inherit each other's conversations. The
# machine is shared: results sit beside baselines measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-5s}
RATES=${RATES:-"250 500 1000 2000 3000 4000"}
RABBIT_RATES=${RABBIT_RATES:-"250 500 1000 2000 3000"}
IDLE_AGENTS=${IDLE_AGENTS:-10000}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
NODES=${NODES:-"1 2 3"}
SCENARIOS=${*:-"baselines embedded idle rabbit-inbound rabbit"}

mkdir -p bench/results
# Two runs at once would share ports and CPUs and spoil each other's numbers.
exec 9>bench/results/.lock
if ! flock -n 9; then
	echo "bench/run.sh: another run is in progress on this machine (bench/results/.lock); wait for it" >&2
	exit 1
fi
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench/results/$STAMP
mkdir -p "$OUT"
BIN=$(mktemp -d)
DATA=$(mktemp -d)
PIDS=()
cleanup() {
	stop_nodes
	rm -rf "$BIN" "$DATA"
}
trap cleanup EXIT

go build -o "$BIN/switchboard" ./cmd/switchboard
go build -o "$BIN/sbload" ./cmd/sbload

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "cpus: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "memory: $(free -m | awk '/Mem:/ {print $2 " MiB"}')"
	echo "kernel: $(uname -r)"
	echo "go: $(go version | cut -d' ' -f3)"
	echo "rabbitmq: $( (timeout 20 rabbitmqctl version 2>/dev/null || echo none) | tail -1)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "ulimit -n: $(ulimit -n)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt"

SECRET=bench-secret
ACCOUNT=AC0123456789abcdef0123456789abcdef
AUTH=0123456789abcdef0123456789abcdef
FROM=+15550000000
TWADDR=127.0.0.1:18599
BASEPORT=18580

# start_nodes N [amqp-exchange]: N fresh nodes on BASEPORT+1.., embedded bus
# unless an exchange is given. Sets TARGETS and NODEPIDS.
start_nodes() {
	local n=$1 exchange=${2:-}
	TARGETS=""
	NODEPIDS=""
	for i in $(seq 1 "$n"); do
		local port=$((BASEPORT + i)) dir
		dir=$(mktemp -d -p "$DATA")
		env SWITCHBOARD_ADDR=127.0.0.1:$port SWITCHBOARD_DATA="$dir" SWITCHBOARD_NODE="bench-$i" \
			SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:$port SWITCHBOARD_SECRET=$SECRET SWITCHBOARD_STATS_INTERVAL=0 \
			TWILIO_ACCOUNT_SID=$ACCOUNT TWILIO_AUTH_TOKEN=$AUTH TWILIO_FROM=$FROM TWILIO_API_URL=http://$TWADDR \
			SWITCHBOARD_AMQP_URL="${exchange:+$AMQP_URL}" SWITCHBOARD_AMQP_EXCHANGE="${exchange:-switchboard}" \
			"$BIN/switchboard" >"$dir.log" 2>&1 &
		PIDS+=($!)
		NODEPIDS="$NODEPIDS${NODEPIDS:+,}$!"
		TARGETS="$TARGETS${TARGETS:+,}http://127.0.0.1:$port"
		for _ in $(seq 1 100); do
			curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
			sleep 0.1
		done
	done
}

stop_nodes() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}

# load NAME ARGS...: one sbload run against TARGETS, JSON into OUT/NAME.json,
# with the CPU use of the nodes and of a local RabbitMQ over the send phase.
load() {
	local name=$1
	shift
	local code=0 cpu=$NODEPIDS beam
	beam=$(pgrep -f 'beam.smp.*rabbit' | head -1 || true)
	if [ -n "$beam" ] && [[ $name == rabbit* ]]; then cpu="$cpu,$beam"; fi
	"$BIN/sbload" -target "$TARGETS" -public-url= -secret $SECRET -auth-token $AUTH -account-sid $ACCOUNT \
		-from $FROM -twilio-addr $TWADDR -json -quiet ${cpu:+-cpu-pid "$cpu"} "$@" >"$OUT/$name.json" 2>"$OUT/$name.err" || code=$?
	echo "$code" >"$OUT/$name.exit"
	printf '%-28s exit %s  %s\n' "$name" "$code" "$(jq -c '{acked_per_s: .inbound.acked_per_s, delivered: .inbound.delivered, lost: .inbound.lost, p99_agent: .latency_ms.webhook_to_agent.p99_ms, p99_webhook: .latency_ms.webhook.p99_ms}' "$OUT/$name.json" 2>/dev/null || echo '?')"
}

# Agents: 20 × capacity 100 ≥ 1000 customers, so nothing waits for a free
# agent and delivery latency measures the node, not the queue.
TRAFFIC=(-agents 20 -capacity 100 -customers 1000 -duration "$DUR" -drain 15s)

for scenario in $SCENARIOS; do
	case $scenario in
	baselines)
		"$BIN/sbload" -baseline leveldb -writers 1 -duration 3s -json >"$OUT/baseline-leveldb-1.json"
		"$BIN/sbload" -baseline leveldb -writers 16 -duration 3s -json >"$OUT/baseline-leveldb-16.json"
		"$BIN/sbload" -baseline amqp -amqp "$AMQP_URL" -duration 5s -json >"$OUT/baseline-amqp.json" || echo "no broker: AMQP baseline skipped"
		"$BIN/sbload" -baseline amqp-stream -amqp "$AMQP_URL" -duration 5s -json >"$OUT/baseline-amqp-stream.json" || echo "no broker: AMQP stream baseline skipped"
		"$BIN/sbload" -baseline amqp-cluster -amqp "$AMQP_URL" -duration 5s -json >"$OUT/baseline-amqp-cluster.json" || echo "no broker: AMQP cluster-path baseline skipped"
		TARGETS=unused
		"$BIN/sbload" -baseline http -rate max -workers 64 -duration "$DUR" -json -quiet >"$OUT/baseline-http__max.json"
		# A "node" that only publishes each webhook along the cluster log's
		# broker path and answers once confirmed, closed loop like the
		# RabbitMQ scenarios' max points.
		beam=$(pgrep -f 'beam.smp.*rabbit' | head -1 || true)
		"$BIN/sbload" -baseline http-amqp -amqp "$AMQP_URL" -rate max -workers "${MAX_WORKERS:-256}" -duration "$DUR" -json -quiet \
			${beam:+-cpu-pid "$beam"} >"$OUT/baseline-http-amqp__max.json" || echo "no broker: forwarding baseline skipped"
		for rate in $RATES; do
			"$BIN/sbload" -baseline http -rate "$rate" -duration "$DUR" -json -quiet >"$OUT/baseline-http__$rate.json"
		done
		jq -c '{name, per_s, p50: .latency_ms.p50_ms, p99: .latency_ms.p99_ms}' "$OUT"/baseline-leveldb-*.json "$OUT"/baseline-amqp.json 2>/dev/null || true
		;;
	embedded)
		for rate in $RATES; do
			start_nodes 1
			load "embedded__$rate" -rate "$rate" "${TRAFFIC[@]}" -nav-rate 50
			stop_nodes
		done
		start_nodes 1
		load embedded__max -rate max -workers 64 "${TRAFFIC[@]}"
		stop_nodes
		;;
	idle)
		start_nodes 1
		load idle "-agents" "$IDLE_AGENTS" -capacity 1 -rate 0 -pid "$NODEPIDS" -idle "${IDLE_FOR:-15s}" -drain 0s -timeout 60s
		stop_nodes
		;;
	rabbit | rabbit-inbound)
		# rabbit: full traffic (agents answer half of the messages, so each
		# inbound SMS brings about 1.7 more log events: the reply and its
		# statuses). rabbit-inbound: the webhook → agent path alone.
		group=rabbit
		extra=()
		if [ "$scenario" = rabbit-inbound ]; then
			group=rabbitin
			extra=(-reply 0)
		fi
		for n in $NODES; do
			for rate in $RABBIT_RATES; do
				start_nodes "$n" "sbbench.$STAMP.$group$n.r$rate"
				load "$group${n}__$rate" -rate "$rate" "${TRAFFIC[@]}" "${extra[@]}"
				stop_nodes
			done
			start_nodes "$n" "sbbench.$STAMP.$group$n.max"
			# 256 webhooks in flight (the raw AMQP baseline keeps 1,024
			# publishes in flight; 64 would measure webhook latency).
			load "$group${n}__max" -rate max -workers "${MAX_WORKERS:-256}" "${TRAFFIC[@]}" "${extra[@]}"
			stop_nodes
		done
		# The per-run exchanges and queues hold nothing we need.
		if command -v rabbitmqctl >/dev/null; then
			timeout 120 go run bench/cleanup.go -amqp "$AMQP_URL" "sbbench.$STAMP." || true
		fi
		;;
	ratio)
		# Issue 16's ratio: two nodes' webhook → agent ceiling over the
		# forwarder's (sbload -baseline http-amqp), measured back to back
		# RATIO_ROUNDS times (default 3), so that each ratio compares two
		# points seconds apart; taken minutes apart on a shared machine,
		# as in the baselines and rabbit-inbound scenarios, it moves by
		# ±20 points.
		beam=$(pgrep -f 'beam.smp.*rabbit' | head -1 || true)
		for round in $(seq 1 "${RATIO_ROUNDS:-3}"); do # start_nodes uses i
			"$BIN/sbload" -baseline http-amqp -amqp "$AMQP_URL" -rate max -workers "${MAX_WORKERS:-256}" -duration "$DUR" -json -quiet \
				${beam:+-cpu-pid "$beam"} >"$OUT/ratio-forwarder-$round.json"
			start_nodes 2 "sbbench.$STAMP.ratio$round"
			load "rabbitratio-$round" -rate max -workers "${MAX_WORKERS:-256}" "${TRAFFIC[@]}" -reply 0
			stop_nodes
			jq -rn --slurpfile f "$OUT/ratio-forwarder-$round.json" --slurpfile n "$OUT/rabbitratio-$round.json" \
				'"round '"$round"': forwarder \($f[0].inbound.acked_per_s|floor)/s, 2 nodes \($n[0].inbound.delivered_per_s|floor)/s delivered: \(100*$n[0].inbound.delivered_per_s/$f[0].inbound.acked_per_s|floor) %"' |
				tee -a "$OUT/ratio.md"
		done
		if command -v rabbitmqctl >/dev/null; then
			timeout 120 go run bench/cleanup.go -amqp "$AMQP_URL" "sbbench.$STAMP." || true
		fi
		;;
	*)
		echo "unknown scenario $scenario (baselines, embedded, idle, rabbit, rabbit-inbound, ratio)" >&2
		exit 2
		;;
	esac
done

go run bench/summarize.go "$OUT" | tee "$OUT/summary.md"
