# Sourced by up.sh and test.sh: makes a fresh Debian 12 machine ready for
# darse — the Docker engine, Debian's docker-compose, debootstrap — and
# starts the engine when it is not running. Idempotent and quiet when done.

set -eu

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "darse: run this as root (it installs packages and starts dockerd)" >&2
		exit 1
	fi
}

install_packages() {
	missing=""
	for p in docker.io docker-compose debootstrap nftables iproute2 curl ca-certificates chromium openssh-client; do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "darse: installing$missing"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
}

# Debian's docker CLI and the engine it talks to come from docker.io.
export PATH="/usr/local/go/bin:$PATH"

# A site with several services (php) gets a network of its own, and the
# engine's default address pools hold about 30 networks (/16s and /20s).
# darse's pool cuts 172.16.0.0/13 into 2048 /24s; the shared front network
# takes 172.24.0.0/16, outside it (compose.Front). An operator's own
# daemon.json is left as it is.
configure_engine() {
	f=/etc/docker/daemon.json
	if [ -e "$f" ]; then
		grep -q default-address-pools "$f" ||
			echo "darse: $f sets no default-address-pools: the engine will hold about 30 networks (one per site with several services)" >&2
		return
	fi
	mkdir -p /etc/docker
	printf '{\n  "default-address-pools": [{"base": "172.16.0.0/13", "size": 24}]\n}\n' >"$f"
	if docker info >/dev/null 2>&1; then
		echo "darse: wrote $f; restarting dockerd to use it"
		stop_engine
	fi
}

stop_engine() {
	if [ -d /run/systemd/system ] && systemctl stop docker 2>/dev/null; then
		return
	fi
	pkill -TERM -x dockerd || true
	i=0
	while pgrep -x dockerd >/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 120 ]; then
			echo "darse: dockerd did not stop" >&2
			exit 1
		fi
		sleep 0.5
	done
}

start_engine() {
	if docker info >/dev/null 2>&1; then
		return
	fi
	if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
		:
	else
		echo "darse: starting dockerd (log: /var/log/darse-dockerd.log)"
		nohup /usr/sbin/dockerd >/var/log/darse-dockerd.log 2>&1 &
	fi
	i=0
	until docker info >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -gt 60 ]; then
			echo "darse: the Docker engine did not start; see /var/log/darse-dockerd.log" >&2
			tail -20 /var/log/darse-dockerd.log >&2 || true
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
enable_forwarding() {
	echo 'net.ipv4.ip_forward = 1' >/etc/sysctl.d/60-darse.conf
	echo 1 >/proc/sys/net/ipv4/ip_forward
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
}

prepare_host() {
	need_root
	need_go
	enable_forwarding
	install_packages
	configure_engine
	start_engine
	accept_forward_policy
	build_darse
	./bin/darse images build
}
