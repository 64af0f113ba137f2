#!/usr/bin/env bash
# bench/latency.sh: latency at half the maximum rate, and what linger.ms
# trades for it.  For each linger.ms and batch size, on a fresh collect-only
# collectord:
#   - the maximum: wrk's closed loop (each of CONNECTIONS clients waits for
#     its answer), as bench/collect.sh measures it, with its p99;
#   - half of that offered on a fixed schedule by bench/open_loop, latency
#     counted from each request's scheduled send time (no coordinated
#     omission): p50, p99, p99.9;
#   - of those requests, the share that took over 10 ms inside the daemon
#     (its own timer, from the body read to the answer): in>10ms;
#   - the floor under it: librdkafka alone (bench/produce_latency) offering
#     the same batches at the same rate with the same linger.ms, each batch
#     on one partition, latency counted the same way: rdk p50, rdk p99.
# A 200 is sent only after Kafka acknowledged every event (acks=all), so the
# latency is the broker's round trip plus linger.ms plus the daemon's work.
# Needs the services up and a build in build/ (or BUILD=dir).
#
#   bench/latency.sh [SECONDS] [BATCHES] [LINGERS] [CONNECTIONS] [ROUNDS]
#       defaults: 10 "10 100" "default" 64 1
#
# LINGERS is a list of linger.ms values ("default": collectord's own).
# With ROUNDS > 1 the whole list is run that many times, interleaved (so a
# busy spell of the machine hits every setting alike), and the medians
# follow the rows.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECS=${1:-10}
BATCHES=${2:-10 100}
LINGERS=${3:-default}
CONNS=${4:-64}
ROUNDS=${5:-1}

header "bench/latency.sh $SECS \"$BATCHES\" \"$LINGERS\" $CONNS $ROUNDS"
echo "# ${SECS}s per run, $CONNS connections; maximum by wrk (closed loop); half of it offered by bench/open_loop"
echo "# (latency from the scheduled send; backlog: requests due but not sent at the end; cpu%: the daemon's"
echo "# share of one core, all%: the whole machine's busy share, both over the half-rate run; rdk: librdkafka"
echo "# alone at the same rate, batch and linger.ms, right after; in>10ms: the share of the half-rate requests"
echo "# that took over 10 ms inside the daemon, by its own timer)"
printf '%-9s %5s %9s %8s %9s | %8s %8s %8s %8s %8s %7s %7s %4s %4s %7s | %8s %8s\n' linger.ms batch 'max ev/s' 'max r/s' \
	'p99@max' 'half r/s' answered p50 p99 p999 non-2xx backlog cpu% all% 'in>10ms' 'rdk p50' 'rdk p99'
for _ in $(seq 1 "$ROUNDS"); do
for linger in $LINGERS; do
	port=$(free_port)
	start_daemon "$port" "$([ "$linger" = default ] || echo "$linger")"
	for batch in $BATCHES; do
		read -r rps _ p99max _ < <(closed_max "$port" "$batch" "$CONNS" "$SECS")
		half=$((rps / 2))
		snap=$(cpu_snap "$DAEMON")
		read -r n0 slow0 < <(served "$port")
		read -r got p50 p99 p999 non err bl < <(open_rate "$port" "$batch" "$CONNS" "$SECS" "$half")
		read -r all cpu < <(cpu_since "$snap" "$DAEMON")
		read -r n1 slow1 < <(served "$port")
		slow=$(awk -v n=$((n1 - n0)) -v s=$((slow1 - slow0)) 'BEGIN { printf "%.2f%%", n ? 100 * s / n : 0 }')
		[ -n "${bytes:-}" ] || bytes=$(record_bytes)
		read -r k50 k99 _ < <(rdkafka_rate "$batch" "$SECS" "$half" "$bytes" \
			"$([ "$linger" = default ] || echo "$linger")")
		printf '%-9s %5s %9s %8s %7sms | %8s %8s %6sms %6sms %6sms %7s %7s %4s %4s %7s | %6sms %6sms\n' "$linger" \
			"$batch" $((rps * batch)) "$rps" "$p99max" "$half" "$got" "$p50" "$p99" "$p999" "$((non + err))" \
			"$bl" "$cpu" "$all" "$slow" "$k50" "$k99" | tee -a "$TMP/rows"
	done
	stop_daemon "$DAEMON"
done
done
[ "$ROUNDS" -gt 1 ] || exit 0
echo "# medians of $ROUNDS rounds"
printf '%-9s %5s %9s %9s | %8s %8s %8s %7s | %8s %8s\n' linger.ms batch 'max ev/s' 'p99@max' p50 p99 p999 'in>10ms' 'rdk p50' 'rdk p99'
sed 's/ms//g; s/|//g' "$TMP/rows" | sort -k1,1 -k2,2n -s | awk '
	function med(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function flush() {
		if (n) printf "%-9s %5s %9.0f %7.2fms | %6.2fms %6.2fms %6.2fms %6.2f%% | %6.2fms %6.2fms\n", k1, k2, med(ev, n), med(pm, n),
			med(p50, n), med(p99, n), med(p999, n), med(sl, n), med(k50, n), med(k99, n)
		n = 0
	}
	$1 != k1 || $2 != k2 { flush(); k1 = $1; k2 = $2 }
	{ n++; ev[n] = $3; pm[n] = $5; p50[n] = $8; p99[n] = $9; p999[n] = $10; sl[n] = $15 + 0; k50[n] = $16; k99[n] = $17 }
	END { flush() }' 
