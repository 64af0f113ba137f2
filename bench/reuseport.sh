#!/usr/bin/env bash
# bench/reuseport.sh: one collectord against two sharing one port
# ([server] so_reuseport = 1, the kernel spreading connections between the
# listeners), collect-only, same topic.  For each batch size and each way:
# the maximum by wrk's closed loop and the latency at half of it offered by
# bench/open_loop (from the scheduled send).  On a machine with fewer
# cores than daemons plus broker, the second process competes for the same
# CPU: the figure says what that costs or gains here, not on a larger box.
# Needs the services up and a build in build/ (or BUILD=dir).
#
#   bench/reuseport.sh [SECONDS] [BATCHES] [CONNECTIONS]
#       defaults: 10 "10 100" 64
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECS=${1:-10}
BATCHES=${2:-10 100}
CONNS=${3:-64}

header "bench/reuseport.sh $SECS \"$BATCHES\" $CONNS"
echo "# ${SECS}s per run, $CONNS connections; maximum by wrk (closed loop); half of it offered by bench/open_loop"
echo "# (latency from the scheduled send; backlog: requests due but not sent at the end; cpu%: the daemons'"
echo "# share of one core, all%: the whole machine's busy share, both over the half-rate run)"
printf '%-9s %5s %9s %8s %9s | %8s %8s %8s %8s %8s %7s %7s %4s %4s\n' processes batch 'max ev/s' 'max r/s' 'p99@max' \
	'half r/s' answered p50 p99 p999 non-2xx backlog cpu% all%
# cpu PID: seconds of CPU the process used so far (user + system).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' "/proc/$1/stat"; }
port=$(free_port)
start_daemon "$port" "" 1
ALL=$DAEMON # pids, one word each
for n in 1 2; do
	if [ "$n" = 2 ]; then
		start_daemon "$port" "" 1
		ALL="$ALL $DAEMON"
	fi
	before=$(for p in $ALL; do cpu "$p"; echo; done)
	for batch in $BATCHES; do
		read -r rps _ p99max _ < <(closed_max "$port" "$batch" "$CONNS" "$SECS")
		half=$((rps / 2))
		# shellcheck disable=SC2086 # one word a pid
		snap=$(cpu_snap $ALL)
		read -r got p50 p99 p999 non err bl < <(open_rate "$port" "$batch" "$CONNS" "$SECS" "$half")
		# shellcheck disable=SC2086
		read -r all cpu < <(cpu_since "$snap" $ALL)
		printf '%-9s %5s %9s %8s %7sms | %8s %8s %6sms %6sms %6sms %7s %7s %4s %4s\n' "$n" "$batch" \
			$((rps * batch)) "$rps" "$p99max" "$half" "$got" "$p50" "$p99" "$p999" "$((non + err))" \
			"$bl" "$cpu" "$all"
	done
	# Both processes must have done their share for the comparison to mean
	# anything: the kernel hashes each connection to one listener.
	echo "# CPU seconds each process used in these runs: $(paste -d' ' <(echo "$before") \
		<(for p in $ALL; do cpu "$p"; echo; done) | awk '{ printf "%s%.1f", (NR > 1 ? ", " : ""), $2 - $1 }')"
done
