# Sourced by test.sh: proves the test suite leaves a platform running on
# the same host alone. Before the tests it notes the host's `inet darse`
# table and its engine's start time, and requests a site and the panel
# through the live front door every 100 ms while they run; after, any
# failed request, a changed table or a restarted engine fails the run.

probe_dir=/run/darse-live-probe

# dockerd_started prints when the host's dockerd started ("" if none runs).
dockerd_started() {
	pid=$(pidof dockerd 2>/dev/null | tr ' ' '\n' | while read -r p; do
		# The test engine runs in its own namespace: only the host's counts.
		[ "$(readlink "/proc/$p/ns/net")" = "$(readlink /proc/self/ns/net)" ] && echo "$p"
	done | head -1)
	[ -n "$pid" ] && ps -o lstart= -p "$pid"
}

# live_targets prints "URL HOST" lines to probe: the panel and the first
# running site of the live platform, or nothing when none runs here.
live_targets() {
	docker info >/dev/null 2>&1 || return 0
	[ -x ./bin/darse ] || return 0
	status=$(DARSE_SRV="${DARSE_SRV:-/srv}" ./bin/darse platform status --json 2>/dev/null) || return 0
	echo "$status" | grep -q '"state": "running"' || return 0
	http=$(grep -s '^ *http:' "${DARSE_SRV:-/srv}/conf/darse.yml" | sed 's/.*: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/' | head -1)
	port=${http##*:}
	[ -n "$port" ] || port=80
	panel=$(echo "$status" | sed -n 's/.*"panel_url": "[a-z]*:\/\/\([^:/"]*\).*/\1/p' | head -1)
	[ -n "$panel" ] && echo "http://127.0.0.1:$port/ $panel"
	site=$(DARSE_SRV="${DARSE_SRV:-/srv}" ./bin/darse site ls 2>/dev/null | awk '$4 == "running" { print $5; exit }')
	[ -n "$site" ] && echo "http://127.0.0.1:$port/ $site"
	return 0
}

start_live_probe() {
	rm -rf "$probe_dir"
	mkdir -p "$probe_dir"
	live_targets >"$probe_dir/targets"
	if [ ! -s "$probe_dir/targets" ]; then
		echo "darse: no live platform on this host; the tests run beside nothing"
		return
	fi
	echo "darse: a live platform runs here; probing it every 100 ms while the tests run:"
	sed 's/^/  /' "$probe_dir/targets"
	nft -s list table inet darse >"$probe_dir/table.before" 2>/dev/null || true
	dockerd_started >"$probe_dir/engine.before"
	: >"$probe_dir/failures"
	touch "$probe_dir/running"
	(
		n=0
		# Bounded: it ends with the tests (running removed) or after 2 hours.
		while [ -e "$probe_dir/running" ] && [ "$n" -lt 72000 ]; do
			while read -r url host; do
				code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' -H "Host: $host" "$url" || true)
				case "$code" in
				2* | 3*) ;;
				*) echo "$(date +%T.%N) $host $code" >>"$probe_dir/failures" ;;
				esac
			done <"$probe_dir/targets"
			n=$((n + 1))
			sleep 0.1
		done
		echo "$n" >"$probe_dir/rounds"
	) &
	probe_pid=$!
}

# stop_live_probe reports what the probe saw; it fails when the tests
# disturbed the live platform.
stop_live_probe() {
	[ -e "$probe_dir/running" ] || return 0
	rm -f "$probe_dir/running"
	wait "$probe_pid" 2>/dev/null || true
	nft -s list table inet darse >"$probe_dir/table.after" 2>/dev/null || true
	dockerd_started >"$probe_dir/engine.after"
	disturbed=0
	if [ -s "$probe_dir/failures" ]; then
		echo "darse: the live platform failed $(wc -l <"$probe_dir/failures") requests while the tests ran:" >&2
		head -20 "$probe_dir/failures" >&2
		disturbed=1
	fi
	if ! cmp -s "$probe_dir/table.before" "$probe_dir/table.after"; then
		echo "darse: the live inet darse table changed while the tests ran" >&2
		diff "$probe_dir/table.before" "$probe_dir/table.after" | head -20 >&2 || true
		disturbed=1
	fi
	if ! cmp -s "$probe_dir/engine.before" "$probe_dir/engine.after"; then
		echo "darse: the host's engine restarted while the tests ran" >&2
		disturbed=1
	fi
	echo "darse: live platform probe: $(cat "$probe_dir/rounds" 2>/dev/null || echo 0) rounds, $(wc -l <"$probe_dir/failures") failures"
	return "$disturbed"
}
