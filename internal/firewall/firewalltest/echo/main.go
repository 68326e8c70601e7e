// Command echo is the container the firewall tests and benchmarks expose:
// on every TCP connection and UDP datagram it answers with the peer's
// address, so a test sees which source address reached the container.
//
//	echo tcp:8080 tcp:8081 udp:5353
//
//	echo dial ADDR:PORT
//
// connects out instead and prints the first line the peer sends: tests
// see which source address a container's outgoing connection arrives from.
// It is built statically and imported as an image by firewalltest.
package main

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: echo tcp:PORT|udp:PORT...")
		os.Exit(2)
	}
	if os.Args[1] == "dial" && len(os.Args) == 3 {
		c, err := net.DialTimeout("tcp", os.Args[2], 5*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo:", err)
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo:", err)
			os.Exit(1)
		}
		fmt.Print(line)
		return
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
