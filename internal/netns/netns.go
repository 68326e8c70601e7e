// Package netns runs a function inside another process's network
// namespace, so that tests and benchmarks reach a container on its own
// loopback instead of sending traffic to bridge addresses.
package netns

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has joined the network namespace of pid.
// Sockets fn opens live in that namespace. The thread is discarded after
// (never returned to the scheduler in the foreign namespace).
func Do(pid int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread dies with the goroutine
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns of pid %d: %w", pid, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("join netns of pid %d: %w", pid, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Get fetches url (http://127.0.0.1:PORT/...) from inside the network
// namespace of pid over a fresh connection, with Host header host when
// set, and returns the status code and body. The socket is opened on the
// namespaced thread itself: http.Transport would dial from another one.
func Get(pid int, url, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	req.Close = true
	var conn net.Conn
	err = Do(pid, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", req.URL.Host, 5*time.Second)
		return err
	})
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := req.Write(conn); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
