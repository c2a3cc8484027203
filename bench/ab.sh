#!/usr/bin/env bash
# A/B of the embedded node between two builds, alternating, with the raw
# HTTP baseline before each point (BENCHMARKS.md, run K):
#
#   bench/ab.sh DIR_A DIR_B [ROUNDS]
#
# DIR_A and DIR_B each hold a built `switchboard`; sbload comes from
# DIR_A. Each point starts a fresh node on 127.0.0.1:18681 and runs a
# closed loop (64 workers, 4 s), then 1,000 msg/s open loop.
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-3}
SECRET=bench-secret ACCOUNT=AC0123456789abcdef0123456789abcdef AUTH=0123456789abcdef0123456789abcdef FROM=+15550000000
PORT=18681 TW=127.0.0.1:18699 SB=$A/sbload
point() { # DIR SBLOAD-ARGS
	local dir pid
	dir=$(mktemp -d)
	env SWITCHBOARD_ADDR=127.0.0.1:$PORT SWITCHBOARD_DATA="$dir" SWITCHBOARD_NODE=ab SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:$PORT \
		SWITCHBOARD_SECRET=$SECRET SWITCHBOARD_STATS_INTERVAL=0 TWILIO_ACCOUNT_SID=$ACCOUNT TWILIO_AUTH_TOKEN=$AUTH TWILIO_FROM=$FROM \
		TWILIO_API_URL=http://$TW "$1/switchboard" >"$dir.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:$PORT/readyz >/dev/null 2>&1 && break; sleep 0.1; done
	# shellcheck disable=SC2086
	"$SB" -target http://127.0.0.1:$PORT -public-url= -secret $SECRET -auth-token $AUTH -account-sid $ACCOUNT -from $FROM \
		-twilio-addr $TW -json -quiet -agents 20 -capacity 100 -customers 1000 -duration 4s -drain 10s $2 2>/dev/null |
		jq -r '"\(.inbound.delivered_per_s|floor)/s p99 \(.latency_ms.webhook_to_agent.p99_ms) ms lost \(.inbound.lost)"'
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir" "$dir.log"
}
for _ in $(seq 1 "$ROUNDS"); do
	for d in "$A" "$B"; do
		h=$("$SB" -baseline http -rate max -workers 64 -duration 3s -json -quiet | jq -r '.inbound.acked_per_s|floor')
		echo "$d load $(cut -d' ' -f1 /proc/loadavg) http $h/s | max $(point "$d" "-rate max -workers 64") | 1000/s $(point "$d" "-rate 1000")"
	done
done
