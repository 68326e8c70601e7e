// Command darse is the operators' tool: everything the panel does, from a
// shell, working even when the panel is down.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/version"
)

// app holds what every command shares: the configuration and, opened on
// first use, the Docker engine and the store.
type app struct {
	srv    string
	cfg    hosting.Config // set from the platform configuration
	log    *slog.Logger
	engine *engine.Engine
	store  *store.Store
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

// Store opens the platform database under <srv>/conf.
func (a *app) Store(ctx context.Context) (*store.Store, error) {
	if a.store == nil {
		s, err := store.Open(ctx, filepath.Join(a.srv, "conf", "darse.db"))
		if err != nil {
			return nil, err
		}
		a.store = s
	}
	return a.store, nil
}

// Platform reads <srv>/conf/darse.yml and sets the sites' configuration from it.
func (a *app) Platform(ctx context.Context) (*platform.Platform, error) {
	cfg, err := platform.Load(a.srv)
	if err != nil {
		return nil, err
	}
	e, err := a.Engine(ctx)
	if err != nil {
		return nil, err
	}
	a.cfg = cfg.Hosting(a.srv)
	return &platform.Platform{Srv: a.srv, Config: cfg, Engine: e, Binaries: binaries(), Socket: hostSocket(), Log: a.log}, nil
}

// hostSocket is the engine socket's path on the host, which the platform's
// projects mount: DARSE_HOST_SOCKET when darse itself runs in a container
// (the top-level compose file sets it), else the one DOCKER_HOST names.
func hostSocket() string {
	if s := os.Getenv("DARSE_HOST_SOCKET"); s != "" {
		return s
	}
	return platform.EngineSocket(os.Getenv("DOCKER_HOST"))
}

// binaries are darse and darse-fw, side by side (bin/ in the repository).
func binaries() []string {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return []string{self, filepath.Join(filepath.Dir(self), "darse-fw")}
}

// Hosting gives the site manager, with the shipped templates installed.
func (a *app) Hosting(ctx context.Context) (*hosting.Hosting, error) {
	if _, err := a.Platform(ctx); err != nil {
		return nil, err
	}
	st, err := a.Store(ctx)
	if err != nil {
		return nil, err
	}
	e, err := a.Engine(ctx)
	if err != nil {
		return nil, err
	}
	if err := installTemplates(a.cfg.TemplatesDir()); err != nil {
		return nil, err
	}
	return hosting.New(a.cfg, st, e, a.log), nil
}

func (a *app) close() {
	if a.engine != nil {
		a.engine.Close()
	}
	if a.store != nil {
		a.store.Close()
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "darse",
		Short: "Self-hosted web hosting: sites as docker compose projects",
		// Errors are printed once, on one line, by run; usage is for --help.
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.SetVersionTemplate("darse {{.Version}}\n")
	root.PersistentFlags().StringVar(&a.srv, "srv", envOr("DARSE_SRV", "/srv"), "root of the platform's folders (env DARSE_SRV); its configuration is conf/darse.yml")
	root.AddCommand(newSiteCmd(a), newImagesCmd(a), newTemplatesCmd(a), newPlatformCmd(a))
	root.AddCommand(newUserCmd(a), newOpCmd(a), newPanelCmd(a), newKeyCmd(a), newForwardCmd(a))
	root.AddCommand(newFwCmd(a), newDockerProxyCmd(a), newVersionCmd())
	root.AddCommand(newContentHelperCmd())
	root.AddCommand(newBackupCmd(a))
	root.AddCommand(newPruneCmd(a))
	root.SetHelpCommand(newHelpCmd(root))
	root.InitDefaultCompletionCmd()
	strictUsage(root)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print darse's version, the commit it was built from and when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "darse", version.String())
			return err
		},
	}
}

// run executes the command line args and returns the exit status: 0, 1
// for a failure, 2 for a command line that was not understood. Every
// error is one line on stderr.
func run(ctx context.Context, a *app, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.close()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "darse:", err)
	if isUsage(err) {
		return 2
	}
	return 1
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	level := slog.LevelWarn
	if err := level.UnmarshalText([]byte(envOr("DARSE_LOG", "warn"))); err != nil {
		fmt.Fprintln(os.Stderr, "darse: DARSE_LOG:", err)
		os.Exit(2)
	}
	a := &app{log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	code := run(ctx, a, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
