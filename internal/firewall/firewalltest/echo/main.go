// Command echo is the container the firewall tests and benchmarks expose:
// on every TCP connection and UDP datagram it answers with the peer's
// address, so a test sees which source address reached the container.
//
//	echo tcp:8080 tcp:8081 udp:5353
//
// It is built statically and imported as an image by firewalltest.
package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: echo tcp:PORT|udp:PORT...")
		os.Exit(2)
	}
	for _, a := range os.Args[1:] {
		proto, port, _ := strings.Cut(a, ":")
		switch proto {
		case "tcp":
			l, err := net.Listen("tcp", ":"+port)
			if err != nil {
				fmt.Fprintln(os.Stderr, "echo:", err)
				os.Exit(1)
			}
			go serveTCP(l)
		case "udp":
			c, err := net.ListenPacket("udp", ":"+port)
			if err != nil {
				fmt.Fprintln(os.Stderr, "echo:", err)
				os.Exit(1)
			}
			go serveUDP(c)
		default:
			fmt.Fprintln(os.Stderr, "echo: bad listener", a)
			os.Exit(2)
		}
	}
	select {}
}

func peer(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	return ap.Addr().Unmap().String()
}

func serveTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		fmt.Fprintf(c, "%s\n", peer(c.RemoteAddr()))
		c.Close()
	}
}

func serveUDP(c net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			continue
		}
		c.WriteTo([]byte(peer(from)+"\n"), from)
	}
}
