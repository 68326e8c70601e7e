package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/content"
	"github.com/darse/darse/internal/metrics"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/panel"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/store"
)

// siteFiles is what operations do with sites' files.
type siteFiles struct {
	content.Archiver
	content.Installer
}

// siteAddress is how visitors reach sites, for the panel's links: HTTPS
// when the front door gets certificates (acme: in darse.yml), plain HTTP
// otherwise, and the front door's port when it is not the scheme's own.
func siteAddress(cfg platform.Config) (scheme, port string) {
	scheme, addr, def := "http", cfg.Front.HTTP, "80"
	if cfg.ACME != nil {
		scheme, addr, def = "https", cfg.Front.HTTPS, "443"
	}
	if _, p, err := net.SplitHostPort(addr); err == nil && p != def {
		port = p
	}
	return scheme, port
}

func newPanelCmd(a *app) *cobra.Command {
	var (
		listen    string
		publicURL string
		secure    bool
		trusted   []string
		metrics   string
		check     string
	)
	cmd := &cobra.Command{
		Use:   "panel [--listen ADDR]",
		Short: "Serve the web panel and carry out the operations it records",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if check != "" {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				return checkHealth(cctx, check)
			}
			h, err := a.Hosting(ctx)
			if err != nil {
				return err
			}
			st, err := a.Store(ctx)
			if err != nil {
				return err
			}
			eng, err := a.Engine(ctx)
			if err != nil {
				return err
			}
			files := siteFiles{
				Archiver:  content.Archiver{UsersDir: a.cfg.UsersDir(), ArchiveDir: filepath.Join(a.srv, "archives")},
				Installer: content.Installer{UsersDir: a.cfg.UsersDir(), Limits: content.DefaultLimits},
			}
			runner := ops.New(st, withBackups{h, a}, files, a.log)
			web, err := fs.Sub(darse.Web, "web")
			if err != nil {
				return err
			}
			plat, err := a.Platform(ctx)
			if err != nil {
				return err
			}
			scheme, port := siteAddress(plat.Config)
			gin.SetMode(gin.ReleaseMode)
			pc := panel.Config{
				SecureCookies:  secure,
				TrustedProxies: trusted,
				TemplatesDir:   a.cfg.TemplatesDir(),
				UsersDir:       a.cfg.UsersDir(),
				PlatformDomain: a.cfg.Domain,
				SiteScheme:     scheme,
				SitePort:       port,
				UploadsDir:     filepath.Join(a.srv, "conf", "uploads"),
				Backups:        a.panelBackups(),
			}
			if u := plat.Config.Updates; u != nil {
				pc.Maintenance = u.Maintenance
			}
			srv, err := panel.New(pc, st, h, runner, eng, web, a.log)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			base := strings.TrimRight(publicURL, "/")
			if base == "" {
				base = "http://" + ln.Addr().String()
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "darse panel: listening on %s\n", base)
			link, err := srv.SetupLink(ctx, 24*time.Hour)
			if err != nil {
				ln.Close()
				return err
			}
			if link != "" {
				fmt.Fprintf(out, "darse panel: no admin yet. Create the first one with this one-time link (valid 24 hours):\n  %s%s\n", base, link)
				fmt.Fprintf(out, "or on this server: darse user add NAME --admin\n")
			}

			collector, disk := startMonitoring(ctx, a.srv, plat.Config, eng, st, a.log)
			stopMetrics, err := serveMetrics(ctx, cmd, metrics, collector, disk, st, a.log)
			if err != nil {
				ln.Close()
				return err
			}
			defer stopMetrics()

			workers := make(chan struct{})
			go func() {
				defer close(workers)
				// Settle what a crash left running before taking anything
				// new, while the panel already answers: resuming a long
				// backup must not keep the admins out (nor Traefik's probe).
				if err := runner.Recover(ctx); err != nil {
					a.log.Error("recover interrupted operations", "err", err)
					if ctx.Err() != nil {
						return
					}
				}
				runner.Run(ctx)
			}()
			go a.runBackupSchedule(ctx, runner, st) // darse.yml's backup.schedule and backup.check
			go func() {
				t := time.NewTicker(time.Hour)
				defer t.Stop()
				for {
					if err := srv.Sweep(ctx); err != nil && ctx.Err() == nil {
						a.log.Warn("forget expired sessions", "err", err)
					}
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
				}
			}()
			hs := srv.HTTPServer() // with read, write and idle deadlines
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				hs.Shutdown(sctx)
			}()
			err = hs.Serve(ln)
			<-workers // a running operation finishes before we exit
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", envOr("DARSE_PANEL_LISTEN", "127.0.0.1:8080"), "address to serve the panel on (env DARSE_PANEL_LISTEN)")
	cmd.Flags().StringVar(&publicURL, "public-url", envOr("DARSE_PANEL_URL", ""), "the panel's address as members reach it, for the printed links (env DARSE_PANEL_URL)")
	cmd.Flags().BoolVar(&secure, "secure-cookies", envOr("DARSE_PANEL_SECURE", "") == "1", "mark cookies Secure: set when the panel is reached over HTTPS (env DARSE_PANEL_SECURE=1)")
	var trustedDefault []string
	if v := os.Getenv("DARSE_PANEL_TRUSTED_PROXY"); v != "" {
		trustedDefault = strings.Split(v, ",")
	}
	cmd.Flags().StringSliceVar(&trusted, "trusted-proxy", trustedDefault, "address or CIDR of a reverse proxy whose X-Forwarded-For is believed, the front door (env DARSE_PANEL_TRUSTED_PROXY, comma-separated)")
	metricsDefault := defaultMetricsAddr
	if v, ok := os.LookupEnv("DARSE_PANEL_METRICS"); ok {
		metricsDefault = v // set but empty: no metrics endpoint
	}
	cmd.Flags().StringVar(&metrics, "metrics", metricsDefault, "address to serve Prometheus metrics on (/metrics), loopback unless you mean every site's figures to be read from elsewhere; empty for none (env DARSE_PANEL_METRICS)")
	// A flag, not a subcommand: panel stays a command, not a group.
	cmd.Flags().StringVar(&check, "check-health", "", "only ask URL and exit 0 when it answers 200 (the panel image's healthcheck: it has no curl)")
	cmd.Flags().MarkHidden("check-health")
	return cmd
}

// defaultMetricsAddr is the panel's metrics endpoint unless told
// otherwise: the host's loopback only.
const defaultMetricsAddr = "127.0.0.1:9464"

// serveMetrics serves the per-site figures and the operations' counts on
// addr, a listener of its own: never the panel's, which members reach.
// The default address taken by something else is a warning (tests and a
// second panel on one host); an address asked for is an error.
func serveMetrics(ctx context.Context, cmd *cobra.Command, addr string, collector *metrics.Collector, disk *metrics.DiskWalker, st *store.Store, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if !cmd.Flags().Changed("metrics") && os.Getenv("DARSE_PANEL_METRICS") == "" {
			log.Warn("no metrics endpoint: the default address is taken", "addr", addr, "err", err)
			return func() {}, nil
		}
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		log.Warn("metrics served beyond loopback: every site's figures can be read there", "addr", ln.Addr().String())
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(metrics.NewExporter(collector, metrics.Sources{Ops: st, Backups: st, Disk: disk}, log)); err != nil {
		ln.Close()
		return nil, err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "darse panel: metrics on http://%s/metrics\n", ln.Addr())
	return serveRegistry(ln, reg, log), nil
}

// serveRegistry serves reg's metrics on ln until the returned stop is
// called (the panel's endpoint, docker-proxy's).
func serveRegistry(ln net.Listener, reg *prometheus.Registry, log *slog.Logger) (stop func()) {
	srv := metrics.NewServer(metrics.Handler(reg, log), log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint", "err", err)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-done
	}
}

// checkHealth is `darse panel --check-health URL`: the panel container's
// healthcheck, as its image has no curl and darse can ask its own /readyz.
func checkHealth(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("check-health %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("check-health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("check-health %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
