#!/usr/bin/env bash
# Node CPU per delivered message, A/B between two builds, alternating
# (BENCHMARKS.md, issue 22):
#
#   bench/cost.sh DIR_A DIR_B [ROUNDS]
#
# DIR_A and DIR_B each hold a built `switchboard`; sbload comes from
# DIR_A. Per build and round: the raw loopback HTTP ceiling (sbload
# -baseline http), then a fresh node at its closed-loop ceiling (64
# workers) and a fresh node at 2,000 msg/s open loop, both with 1,000
# agents of capacity 1 and 1,000 customers, webhook → agent only, node CPU
# from -cpu-pid. 10 s per point. One JSON per point under $OUT.
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-3} DUR=${DUR:-10s}
OUT=${OUT:-$(mktemp -d)}
SECRET=bench-secret ACCOUNT=AC0123456789abcdef0123456789abcdef AUTH=0123456789abcdef0123456789abcdef FROM=+15550000000
PORT=18781 TW=127.0.0.1:18799 SB=$A/sbload
point() { # NAME DIR SBLOAD-ARGS
	local dir pid
	dir=$(mktemp -d)
	env SWITCHBOARD_ADDR=127.0.0.1:$PORT SWITCHBOARD_DATA="$dir" SWITCHBOARD_NODE=cost SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:$PORT \
		SWITCHBOARD_SECRET=$SECRET SWITCHBOARD_STATS_INTERVAL=0 TWILIO_ACCOUNT_SID=$ACCOUNT TWILIO_AUTH_TOKEN=$AUTH TWILIO_FROM=$FROM \
		TWILIO_API_URL=http://$TW "$2/switchboard" >"$dir.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:$PORT/readyz >/dev/null 2>&1 && break; sleep 0.1; done
	# shellcheck disable=SC2086
	"$SB" -target http://127.0.0.1:$PORT -public-url= -secret $SECRET -auth-token $AUTH -account-sid $ACCOUNT -from $FROM \
		-twilio-addr $TW -json -quiet -agents 1000 -capacity 1 -customers 1000 -reply 0 -duration "$DUR" -drain 10s \
		-cpu-pid "$pid" $3 >"$OUT/$1.json" 2>/dev/null || true
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir" "$dir.log"
	jq -r '"\(.inbound.delivered_per_s|floor)/s node \(.cpu_us_per_delivered|floor) µs/msg p99 \(.latency_ms.webhook_to_agent.p99_ms) ms lost \(.inbound.lost)"' "$OUT/$1.json"
}
echo "out $OUT, nproc $(nproc)"
for r in $(seq 1 "$ROUNDS"); do
	for d in "$A" "$B"; do
		n=$(basename "$d")
		"$SB" -baseline http -rate max -workers 64 -duration "$DUR" -json -quiet >"$OUT/$n-$r-http.json"
		h=$(jq -r '.inbound.acked_per_s|floor' "$OUT/$n-$r-http.json")
		echo "$n load $(cut -d' ' -f1 /proc/loadavg) | http $h/s | max $(point "$n-$r-max" "$d" "-rate max -workers 64") | 2000/s $(point "$n-$r-2000" "$d" "-rate 2000")"
	done
done
