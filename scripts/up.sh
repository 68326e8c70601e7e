#!/bin/sh
# Brings darse up on this machine: installs and starts what it needs,
# builds the platform's images locally, and serves a demo site.
# Usage: ./scripts/up.sh   (as root, from the repository)
cd "$(dirname "$0")/.."
. ./scripts/host.sh
prepare_host

srv="${DARSE_SRV:-/srv}"

# install_units makes the host bring darse back at boot (scripts/boot.sh):
# systemd units where systemd runs; elsewhere, say how.
install_units() {
	if [ ! -d /run/systemd/system ]; then
		echo "darse: no systemd here: run $(pwd)/scripts/boot.sh at boot (e.g. from /etc/rc.local) to bring darse back"
		return
	fi
	for u in darse-firewall.service darse.service darse-updates.service darse-updates.timer; do
		sed -e "s|@REPO@|$(pwd)|g" -e "s|@SRV@|$srv|g" "scripts/systemd/$u" >"/etc/systemd/system/$u.new"
		mv "/etc/systemd/system/$u.new" "/etc/systemd/system/$u"
	done
	systemctl daemon-reload
	systemctl enable darse-firewall.service darse.service >/dev/null 2>&1
	systemctl enable --now darse-updates.timer >/dev/null 2>&1
	echo "darse: systemd units darse-firewall and darse enabled: the platform comes back at boot"
	echo "darse: darse-updates.timer asks hourly whether darse.yml's updates.schedule has a run due"
}
./bin/darse platform up
# Sites follow darse.yml (entry points, TLS); a site edited by hand is
# named and left as it is, and the rest goes on.
./bin/darse site render --all || echo "darse: the sites named above were left as they are"
if ./bin/darse site status demo >/dev/null 2>&1; then
	./bin/darse site up demo
else
	./bin/darse site create demo --template static
fi
./bin/darse platform status
install_units
domain=$(./bin/darse site status demo --json | sed -n 's/.*"domain": "\([^"]*\)".*/\1/p' | head -1)
panel=$(./bin/darse platform status --json | sed -n 's/.*"panel_url": "\([^"]*\)".*/\1/p' | head -1)
cat <<MSG

The panel: $panel
  First admin: ./bin/darse user add NAME --admin   (asks for the password)
  or open the one-time setup link it printed:  docker logs darse-panel_panel_1 2>&1 | grep -i setup

darse is up: the front door (Traefik, the firewall watcher), the panel and a demo site, whose files are in
$srv/users/demo/data/. The platform's configuration is $srv/conf/darse.yml
(domain, listening addresses, ACME); without it sites answer at
NAME.localhost over plain HTTP on port 80, IPv4 and IPv6:
  curl http://$domain/                        # or: curl -H 'Host: $domain' http://[::1]/
  ./bin/darse site create blog --template php   # a new site, up in seconds
  ./bin/darse site ls                           # every site and its state
MSG
