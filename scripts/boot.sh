#!/bin/sh
# Brings darse back after the host boots, in the order that keeps tenants
# apart from the first packet: darse's firewall table (as `darse fw save`
# and `darse platform up` last wrote it) is loaded before the engine starts
# any container, then the engine, then the platform (darse-fw takes the
# table over and brings it up to date). Sites come back by their restart
# policy when the engine starts.
#
# The systemd units in scripts/systemd run it (up.sh installs them where
# systemd runs); elsewhere run it from the init system (e.g. /etc/rc.local:
# `/path/to/darse/scripts/boot.sh`), as root.
# Usage: ./scripts/boot.sh [firewall|engine|platform]   (default: all three)
cd "$(dirname "$0")/.."
. ./scripts/host.sh
srv="${DARSE_SRV:-/srv}"
saved="$srv/conf/firewall.nft"
darse="${DARSE_BIN:-./bin/darse}"

boot_firewall() {
	if [ ! -s "$saved" ]; then
		echo "darse: no saved firewall ruleset ($saved): containers start unfiltered until darse-fw runs" >&2
		return 0
	fi
	table=$(sed -n 's/^table inet \([a-z0-9-]*\)$/\1/p' "$saved" | head -1)
	if nft list table inet "$table" >/dev/null 2>&1; then
		return 0 # in place already: darse-fw keeps it, a saved copy is older
	fi
	nft -f "$saved"
	echo "darse: firewall table inet $table loaded from $saved"
}

boot_platform() {
	DARSE_SRV="$srv" "$darse" platform up
}

case "${1:-all}" in
firewall) boot_firewall ;;
engine) start_engine ;;
platform) boot_platform ;;
all)
	boot_firewall
	start_engine
	boot_platform
	;;
*)
	echo "usage: $0 [firewall|engine|platform]" >&2
	exit 2
	;;
esac
