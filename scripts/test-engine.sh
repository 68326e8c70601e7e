# Sourced by test.sh: the test suite's own Docker engine. A second dockerd
# runs in a network namespace of its own (darse-test), with its own
# data-root, exec-root and socket, as moby's own test daemons do: its
# bridges, containers, netfilter tables and listening ports are all in that
# namespace, so a platform running on the host (its engine, its sites, its
# firewall table, ports 80 and 443) is never touched by the tests, and the
# engine-restart test restarts this engine, not the host's.

# DARSE_TEST_NS names another such engine (e.g. to soak-test while the
# suite runs on this one); everything of it is named after it.
test_ns=${DARSE_TEST_NS:-darse-test}
test_root=/var/lib/$test_ns
test_run=/run/$test_ns
test_sock=$test_run/docker.sock
test_pidfile=$test_run/dockerd.pid
test_log=/var/log/$test_ns-dockerd.log
TEST_DOCKER_HOST=unix://$test_sock
# The namespace's resolver (start_test_dns): a documentation address
# (TEST-NET-3), never routed anywhere.
test_dns=203.0.113.53

# nsenter, not `ip netns exec`: only the network namespace changes, and
# the host's mounts (the cgroup hierarchy dockerd needs) stay as they are.
in_test_ns() {
	nsenter --net="/run/netns/$test_ns" "$@"
}

test_docker() {
	DOCKER_HOST=$TEST_DOCKER_HOST docker "$@"
}

# start_test_engine makes the namespace (loopback up, forwarding on before
# dockerd starts, as on the host) and starts the engine in it.
start_test_engine() {
	mkdir -p "$test_run" "$test_root"
	[ -e "/run/netns/$test_ns" ] || ip netns add "$test_ns"
	in_test_ns ip link set lo up
	in_test_ns sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
	# The namespace has no way out. Names outside it get a quick "no such
	# name" from a resolver of its own, where the host's nameserver would
	# not answer at all and Docker's embedded DNS passes that silence on:
	# 20 s a lookup (WordPress's admin asks api.wordpress.org on every page).
	start_test_dns
	if test_docker info >/dev/null 2>&1; then
		return
	fi
	# live-restore (as host.sh writes for the host's engine) only when a
	# test asks: the reboot and engine-restart tests need containers that
	# stop with the engine.
	live=''
	[ -z "${DARSE_TEST_ENGINE_LIVE_RESTORE:-}" ] || live=', "live-restore": true'
	printf '%s\n' '{"default-address-pools": [{"base": "172.16.0.0/13", "size": 24}], "dns": ["'"$test_dns"'"]'"$live"'}' >"$test_run/daemon.json"
	echo "darse: starting the test suite's engine in network namespace $test_ns (log: $test_log)"
	in_test_ns nohup /usr/sbin/dockerd --data-root "$test_root" --exec-root "$test_run/exec" \
		--pidfile "$test_pidfile" -H "$TEST_DOCKER_HOST" --config-file "$test_run/daemon.json" \
		>>"$test_log" 2>&1 &
	i=0
	until test_docker info >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -gt 120 ]; then
			echo "darse: the test engine did not start; see $test_log" >&2
			tail -20 "$test_log" >&2 || true
			exit 1
		fi
		sleep 0.5
	done
}

# start_test_dns answers every name with NXDOMAIN (dnsmasq, no upstream)
# at $test_dns, an address of the namespace every container routes to.
start_test_dns() {
	in_test_ns ip addr replace "$test_dns/32" dev lo
	if [ -s "$test_run/dnsmasq.pid" ] && kill -0 "$(cat "$test_run/dnsmasq.pid")" 2>/dev/null; then
		return
	fi
	in_test_ns dnsmasq --no-resolv --no-hosts --address=/#/ --listen-address="$test_dns" \
		--bind-interfaces --pid-file="$test_run/dnsmasq.pid" --user=root >>"$test_log" 2>&1
}

# stop_test_engine stops the test engine (its images stay, for the next
# run) and its resolver.
stop_test_engine() {
	if [ -s "$test_run/dnsmasq.pid" ]; then
		kill "$(cat "$test_run/dnsmasq.pid")" 2>/dev/null || true
		rm -f "$test_run/dnsmasq.pid"
	fi
	[ -s "$test_pidfile" ] || return 0
	stop_pid "$(cat "$test_pidfile")" "the test engine"
	rm -f "$test_pidfile"
}

# load_test_images gives the test engine the platform's images: those the
# host's engine already has are copied over (docker save | load), the rest
# are built into the test engine directly.
load_test_images() {
	if docker info >/dev/null 2>&1; then
		for img in $(docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E '^(darse/|traefik:)' | grep -v '^darse/darse:' || true); do
			if ! test_docker image inspect "$img" >/dev/null 2>&1; then
				echo "darse: copying $img to the test engine"
				docker save "$img" | test_docker load -q >/dev/null
			fi
		done
	fi
	DOCKER_HOST=$TEST_DOCKER_HOST ./bin/darse images build
}

# in_test_env runs a command in the test namespace against the test
# engine. Nothing leaves that namespace: Go must not reach for the module
# proxy from there (everything is fetched and built before).
in_test_env() {
	in_test_ns env DOCKER_HOST="$TEST_DOCKER_HOST" GOPROXY=off GOFLAGS=-mod=readonly \
		DARSE_TEST_ENGINE_PIDFILE="$test_pidfile" "$@"
}
