# Sourced by up.sh and test.sh: makes a fresh Debian 12 machine ready for
# darse — the Docker engine, Debian's docker-compose, debootstrap — and
# starts the engine when it is not running. An engine the host already has
# (Docker CE or Debian's docker.io) is used as it is, never replaced, and
# only a dockerd this script started is ever stopped. Idempotent and quiet
# when done.

set -eu

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "darse: run this as root (it installs packages and starts dockerd)" >&2
		exit 1
	fi
}

# install_packages installs the Debian packages named that are missing.
install_packages() {
	missing=""
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "darse: installing$missing"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
}

# The platform's packages. The engine comes from docker.io only when the
# host has none: on a host with Docker CE, installing docker.io would make
# apt remove it, and the engine the host runs with it.
install_platform_packages() {
	engine=""
	if ! command -v dockerd >/dev/null 2>&1; then
		engine=docker.io
	fi
	install_packages $engine docker-compose debootstrap nftables iproute2 curl ca-certificates
}

export PATH="/usr/local/go/bin:$PATH"

# darse's address pool for the engine: a site with several services (php)
# gets a network of its own, and the engine's default pools hold about 30
# networks (/16s and /20s). 172.16.0.0/13 in 2048 /24s; the shared front
# network takes 172.24.0.0/16, outside it (compose.Front). live-restore
# keeps containers running while dockerd restarts.
daemon_json='{
  "default-address-pools": [{"base": "172.16.0.0/13", "size": 24}],
  "live-restore": true
}'

# configure_engine writes /etc/docker/daemon.json when there is none and
# no engine runs yet (it is read when dockerd starts). An operator's own
# daemon.json, or an engine already running without one, is left alone:
# darse never restarts an engine it did not start.
configure_engine() {
	f=/etc/docker/daemon.json
	if [ -e "$f" ]; then
		grep -q default-address-pools "$f" ||
			echo "darse: $f sets no default-address-pools: the engine will hold about 30 networks (one per site with several services)" >&2
		return
	fi
	if docker info >/dev/null 2>&1; then
		echo "darse: the running engine has no $f; darse leaves it as it is (see README, \"The engine\")" >&2
		return
	fi
	mkdir -p /etc/docker
	printf '%s\n' "$daemon_json" >"$f"
}

# The dockerd this script started, if any: the only one it ever stops.
engine_pidfile=/run/darse-dockerd.pid

start_engine() {
	if docker info >/dev/null 2>&1; then
		return
	fi
	if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
		:
	else
		echo "darse: starting dockerd (log: /var/log/darse-dockerd.log)"
		nohup /usr/sbin/dockerd --pidfile "$engine_pidfile" >/var/log/darse-dockerd.log 2>&1 &
	fi
	i=0
	until docker info >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -gt 120 ]; then
			echo "darse: the Docker engine did not start; see /var/log/darse-dockerd.log" >&2
			tail -20 /var/log/darse-dockerd.log >&2 || true
			exit 1
		fi
		sleep 0.5
	done
}

# stop_engine stops the dockerd start_engine started, and no other.
stop_engine() {
	[ -s "$engine_pidfile" ] || return 0
	stop_pid "$(cat "$engine_pidfile")" dockerd
	rm -f "$engine_pidfile"
}

# stop_pid sends SIGTERM to a process and waits (up to a minute) for it to end.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 120 ]; then
			echo "darse: $2 ($1) did not stop" >&2
			exit 1
		fi
		sleep 0.5
	done
}

# IPv4 forwarding is on before dockerd first starts: when dockerd has to turn
# it on itself, it also sets the `ip filter FORWARD` policy to drop, and then
# an exposure of a port Docker does not publish is dropped however darse-fw
# accepts it. darse-fw's own forward chain decides what may enter a container
# network (see README, "Firewall").
#
# The neighbour tables are sized for thousands of containers: the default
# (gc_thresh3 = 1024, shared by every namespace) overflows at about a
# thousand sites, and sites then answer 503 ("no route to host").
enable_forwarding() {
	cat >/etc/sysctl.d/60-darse.conf <<-'EOF'
	net.ipv4.ip_forward = 1
	net.ipv4.neigh.default.gc_thresh1 = 8192
	net.ipv4.neigh.default.gc_thresh2 = 32768
	net.ipv4.neigh.default.gc_thresh3 = 65536
	net.ipv6.neigh.default.gc_thresh1 = 8192
	net.ipv6.neigh.default.gc_thresh2 = 32768
	net.ipv6.neigh.default.gc_thresh3 = 65536
	EOF
	sysctl -q -p /etc/sysctl.d/60-darse.conf >/dev/null 2>&1 || echo 1 >/proc/sys/net/ipv4/ip_forward
}

# A dockerd started before darse's setup may already have set the policy to
# drop: it is set back to accept, since darse-fw's forward chain drops new
# connections into container networks that no exposure allows.
accept_forward_policy() {
	if nft list chain ip filter FORWARD 2>/dev/null | grep -q 'policy drop'; then
		echo "darse: Docker's ip filter FORWARD policy is drop; setting it to accept (darse-fw filters container networks)"
		nft add chain ip filter FORWARD '{ policy accept; }'
	fi
}

need_go() {
	if ! command -v go >/dev/null 2>&1; then
		echo "darse: Go 1.26 is needed to build darse (not found in PATH or /usr/local/go/bin)" >&2
		exit 1
	fi
}

build_darse() {
	mkdir -p bin
	CGO_ENABLED=0 go build -o bin/darse ./cmd/darse
	CGO_ENABLED=0 go build -o bin/darse-fw ./cmd/darse-fw
	# restic (pinned, built from the Go module proxy) beside darse: the
	# darse image ships it for backups.
	./bin/darse backup install-restic >/dev/null
}

# prepare_host makes the host ready to run the platform: packages, the
# engine (started if it is not running), darse's binaries and its images.
prepare_host() {
	need_root
	need_go
	enable_forwarding
	install_platform_packages
	configure_engine
	start_engine
	accept_forward_policy
	build_darse
	./bin/darse images build
}
