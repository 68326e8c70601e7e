// Command darse is the operators' tool: everything the panel does, from a
// shell, working even when the panel is down.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/engine"
)

// app holds what every command shares: the /srv root and, opened on first
// use, the Docker engine.
type app struct {
	srv    string
	log    *slog.Logger
	engine *engine.Engine
}

// Engine connects to the Docker engine the first time a command needs it.
func (a *app) Engine(ctx context.Context) (*engine.Engine, error) {
	if a.engine == nil {
		e, err := engine.New(ctx)
		if err != nil {
			return nil, err
		}
		a.engine = e
	}
	return a.engine, nil
}

func (a *app) close() {
	if a.engine != nil {
		a.engine.Close()
	}
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "darse",
		Short:         "Self-hosted web hosting: sites as docker compose projects",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	srv := os.Getenv("DARSE_SRV")
	if srv == "" {
		srv = "/srv"
	}
	root.PersistentFlags().StringVar(&a.srv, "srv", srv, "root of the platform's folders (env DARSE_SRV)")
	root.AddCommand(newImagesCmd(a))
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	err := newRootCmd(a).ExecuteContext(ctx)
	a.close()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "darse:", err)
		os.Exit(1)
	}
}
