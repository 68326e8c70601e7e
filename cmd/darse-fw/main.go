// Command darse-fw is the firewall watcher: it follows the Docker
// engine's events and keeps darse's nftables table (inet darse) equal to
// what the running containers expose, for IPv4 and IPv6.
//
// It needs CAP_NET_ADMIN in the host's network namespace and the Docker
// socket; as a container: network_mode host, cap_add NET_ADMIN, and
// /var/run/docker.sock mounted. Every flag has an environment variable:
//
//	--table         DARSE_FW_TABLE         nftables inet table darse owns (darse)
//	--srv           DARSE_SRV              platform root; core/ and apps/ hold platform projects (/srv)
//	--input         DARSE_FW_INPUT         host input policy: accept, or drop except --input-allow (accept)
//	--input-allow   DARSE_FW_INPUT_ALLOW   ports left open by --input drop (tcp/22,tcp/80,tcp/443,udp/443)
//	--tenant-allow  DARSE_FW_TENANT_ALLOW  host ports tenant containers may reach, "" for none (tcp/80,tcp/443,udp/443)
//	--egress-deny   DARSE_FW_EGRESS_DENY   CIDRs tenant containers may not reach, besides link-local (none)
//	--label         DARSE_FW_LABEL         only containers and networks with this label, KEY or KEY=VALUE (all)
//	--debounce-min  DARSE_FW_DEBOUNCE_MIN  quiet time after an event before applying (10ms)
//	--debounce-max  DARSE_FW_DEBOUNCE_MAX  longest wait after the first event of a burst (50ms)
//	--resync        DARSE_FW_RESYNC        period of the full resync (1m)
//	--retry-max     DARSE_FW_RETRY_MAX     longest backoff after a failed apply or a lost engine (10s)
//	--log-level     DARSE_LOG              debug, info, warn or error (info)
//	--log-format    DARSE_FW_LOG_FORMAT    text or json (text)
//	--metrics       DARSE_FW_METRICS       address to serve Prometheus metrics on, e.g. 127.0.0.1:9465 (none)
//
// The engine is found as the Docker CLI finds it (DOCKER_HOST, default
// unix:///var/run/docker.sock). The rules stay in place when darse-fw
// stops; a restarted darse-fw resyncs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/firewall"
	"github.com/darse/darse/internal/nft"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "darse-fw:", err)
		os.Exit(1)
	}
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// envOr is env, except that a variable set but empty stands: "" means
// none, not the default.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("darse-fw", flag.ContinueOnError)
	var (
		cfg         firewall.Config
		input       = fs.String("input", env("DARSE_FW_INPUT", string(firewall.InputAccept)), "host input policy: accept, or drop except --input-allow (env DARSE_FW_INPUT)")
		inputAllow  = fs.String("input-allow", env("DARSE_FW_INPUT_ALLOW", ports(firewall.DefaultInputAllow)), "ports left open by --input drop (env DARSE_FW_INPUT_ALLOW)")
		tenantAllow = fs.String("tenant-allow", envOr("DARSE_FW_TENANT_ALLOW", ports(firewall.DefaultTenantHostAllow)), "host ports tenant containers may reach; empty for none (env DARSE_FW_TENANT_ALLOW)")
		egressDeny  = fs.String("egress-deny", env("DARSE_FW_EGRESS_DENY", ""), "CIDRs tenant containers may not reach, besides 169.254.0.0/16 and fe80::/10 (env DARSE_FW_EGRESS_DENY)")
		label       = fs.String("label", env("DARSE_FW_LABEL", ""), "only containers and networks carrying this label, KEY or KEY=VALUE (env DARSE_FW_LABEL)")
		logLevel    = fs.String("log-level", env("DARSE_LOG", "info"), "debug, info, warn or error (env DARSE_LOG)")
		logFormat   = fs.String("log-format", env("DARSE_FW_LOG_FORMAT", "text"), "text or json (env DARSE_FW_LOG_FORMAT)")
		metricsAddr = fs.String("metrics", env("DARSE_FW_METRICS", ""), "address to serve Prometheus metrics on (/metrics), e.g. 127.0.0.1:9465; none by default (env DARSE_FW_METRICS)")
	)
	fs.StringVar(&cfg.Options.Table, "table", env("DARSE_FW_TABLE", firewall.DefaultTable), "nftables inet table darse owns (env DARSE_FW_TABLE)")
	fs.StringVar(&cfg.Options.Srv, "srv", env("DARSE_SRV", "/srv"), "platform root: platform projects live in core/ and apps/ (env DARSE_SRV)")
	fs.DurationVar(&cfg.DebounceMin, "debounce-min", envDuration("DARSE_FW_DEBOUNCE_MIN", 10*time.Millisecond), "quiet time after an event before applying (env DARSE_FW_DEBOUNCE_MIN)")
	fs.DurationVar(&cfg.DebounceMax, "debounce-max", envDuration("DARSE_FW_DEBOUNCE_MAX", 50*time.Millisecond), "longest wait after the first event of a burst (env DARSE_FW_DEBOUNCE_MAX)")
	fs.DurationVar(&cfg.Resync, "resync", envDuration("DARSE_FW_RESYNC", time.Minute), "period of the full resync (env DARSE_FW_RESYNC)")
	fs.DurationVar(&cfg.RetryMax, "retry-max", envDuration("DARSE_FW_RETRY_MAX", 10*time.Second), "longest backoff after a failed apply or a lost engine (env DARSE_FW_RETRY_MAX)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch firewall.InputPolicy(*input) {
	case firewall.InputAccept, firewall.InputDrop:
		cfg.Options.Input = firewall.InputPolicy(*input)
	default:
		return fmt.Errorf("--input %q: want accept or drop", *input)
	}
	allow, err := firewall.ParsePorts(*inputAllow)
	if err != nil {
		return fmt.Errorf("--input-allow: %w", err)
	}
	cfg.Options.InputAllow = allow
	if cfg.Options.TenantHostAllow, err = firewall.ParsePorts(*tenantAllow); err != nil {
		return fmt.Errorf("--tenant-allow: %w", err)
	}
	if cfg.Options.EgressDeny, err = firewall.ParsePrefixes(*egressDeny); err != nil {
		return fmt.Errorf("--egress-deny: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	switch *logFormat {
	case "text":
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return fmt.Errorf("--log-format %q: want text or json", *logFormat)
	}
	log := slog.New(h)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	eng, err := connect(ctx, log, cfg.RetryMax)
	if err != nil {
		return err
	}
	if eng == nil {
		return nil // stopped while waiting for the engine
	}
	defer eng.Close()
	log.Info("watching", "table", "inet "+cfg.Options.Table, "input", cfg.Options.Input, "label", *label,
		"tenant_allow", ports(cfg.Options.TenantHostAllow), "egress_deny", prefixes(cfg.Options.EgressDeny),
		"debounce_min", cfg.DebounceMin, "debounce_max", cfg.DebounceMax, "resync", cfg.Resync)
	var (
		w *firewall.Watcher
		m *fwMetrics
	)
	if *metricsAddr != "" {
		if m, err = newFWMetrics(func() firewall.Stats { return w.Stats() }); err != nil {
			return err
		}
		cfg.OnApply = m.observe
	}
	w = firewall.NewWatcher(eng.Firewall(*label), nft.New(), cfg, log)
	if m != nil { // serving once w is set: the counters read it
		if err := m.serve(ctx, *metricsAddr, log); err != nil {
			return err
		}
	}
	return w.Run(ctx)
}

// connect waits for the engine, with backoff: darse-fw may start before
// dockerd.
func connect(ctx context.Context, log *slog.Logger, maxWait time.Duration) (*engine.Engine, error) {
	wait := 100 * time.Millisecond
	for {
		eng, err := engine.New(ctx)
		if err == nil {
			return eng, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		log.Warn("engine unreachable", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

func ports(ps []firewall.Port) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
