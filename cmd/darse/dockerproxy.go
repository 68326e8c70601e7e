package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/dockerproxy"
)

func newDockerProxyCmd(a *app) *cobra.Command {
	var socket, engine, metricsAddr string
	cmd := &cobra.Command{
		Use:   "docker-proxy --socket PATH",
		Short: "Serve Traefik a read-only view of the engine, container inspections cached",
		Long: "Listens on a unix socket and passes only what Traefik's Docker provider reads (ping, version,\n" +
			"container list and inspections, events); inspections are kept until an event about the\n" +
			"container arrives, so Traefik's refreshes stay quick with hundreds of sites.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strings.HasPrefix(engine, "unix://") {
				return errors.New("--engine: only a unix:// socket is supported")
			}
			if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
				return err
			}
			os.Remove(socket) // a socket left by a previous run
			l, err := net.Listen("unix", socket)
			if err != nil {
				return err
			}
			if err := os.Chmod(socket, 0o600); err != nil {
				return err
			}
			p := dockerproxy.New(strings.TrimPrefix(engine, "unix://"), a.log)
			defer p.Close()
			if metricsAddr != "" {
				stop, err := serveProxyMetrics(cmd, metricsAddr, p, a.log)
				if err != nil {
					return err
				}
				defer stop()
			}
			srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				srv.Close()
			}()
			a.log.Info("docker proxy listening", "socket", socket, "engine", engine)
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "/run/darse/docker.sock", "unix socket to listen on")
	cmd.Flags().StringVar(&engine, "engine", envOr("DOCKER_HOST", "unix:///var/run/docker.sock"), "the engine's socket (env DOCKER_HOST)")
	cmd.Flags().StringVar(&metricsAddr, "metrics", envOr("DARSE_PROXY_METRICS", ""), "address to serve Prometheus metrics on (/metrics: the cache's hits and misses), e.g. 127.0.0.1:9466; none by default (env DARSE_PROXY_METRICS)")
	return cmd
}

// serveProxyMetrics answers /metrics on addr. The proxy runs in the
// host's network namespace (core/front): a loopback address keeps it on
// the host. It holds no site's figures, only the cache's counters.
func serveProxyMetrics(cmd *cobra.Command, addr string, p *dockerproxy.Proxy, log *slog.Logger) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(p.Metrics()); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		log.Warn("docker proxy metrics served beyond loopback", "addr", ln.Addr().String())
	}
	fmt.Fprintf(cmd.OutOrStdout(), "darse docker-proxy: metrics on http://%s/metrics\n", ln.Addr())
	return serveRegistry(ln, reg, log), nil
}
