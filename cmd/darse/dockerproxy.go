package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/dockerproxy"
)

func newDockerProxyCmd(a *app) *cobra.Command {
	var socket, engine string
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
	return cmd
}
