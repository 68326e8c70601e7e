package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/firewall"
	"github.com/darse/darse/internal/nft"
	"github.com/darse/darse/internal/render"
)

// newFwCmd is the operators' view of the firewall watcher (darse-fw): the
// ruleset it would apply, computed the same way, touching nothing.
func newFwCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "fw", Short: "The firewall watcher's nftables ruleset (darse-fw)"}
	var (
		table, input, allow, tenantAllow, egressDeny, label, stateFile, forward string
	)
	render := &cobra.Command{
		Use:   "render",
		Short: "Print the ruleset darse-fw would apply now, in nft syntax, without applying it",
		Long: `Print the ruleset darse-fw would apply for the running containers: an nft
script (loadable with nft -f) preceded by comments listing every exposure
and every refused or limited one with the reason. Nothing is changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			o := firewall.Options{Table: table, Srv: a.srv, Input: firewall.InputPolicy(input)}
			if o.Input != firewall.InputAccept && o.Input != firewall.InputDrop {
				return fmt.Errorf("--input %q: want accept or drop", input)
			}
			for _, f := range strings.Split(allow, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				p, err := firewall.ParsePort(f)
				if err != nil {
					return fmt.Errorf("--input-allow: %w", err)
				}
				o.InputAllow = append(o.InputAllow, p)
			}
			var err error
			if o.TenantHostAllow, err = firewall.ParsePorts(tenantAllow); err != nil {
				return fmt.Errorf("--tenant-allow: %w", err)
			}
			if o.EgressDeny, err = firewall.ParsePrefixes(egressDeny); err != nil {
				return fmt.Errorf("--egress-deny: %w", err)
			}
			switch forward {
			case "auto":
				// Reading Docker's chain needs CAP_NET_ADMIN; without it the
				// IPv4 caveat is just not computed.
				if drops, err := nft.New().ForwardDrops(ctx); err == nil {
					o.DockerForwardDrop = drops
				}
			case "drop":
				o.DockerForwardDrop = true
			case "accept":
			default:
				return fmt.Errorf("--docker-forward %q: want auto, drop or accept", forward)
			}
			var st firewall.State
			if stateFile != "" {
				b, err := os.ReadFile(stateFile)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &st); err != nil {
					return fmt.Errorf("%s: %w", stateFile, err)
				}
			} else {
				e, err := a.Engine(ctx)
				if err != nil {
					return err
				}
				if st, err = e.Firewall(label).Snapshot(ctx); err != nil {
					return err
				}
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), firewall.Build(st, o).Text())
			return err
		},
	}
	render.Flags().StringVar(&table, "table", envOr("DARSE_FW_TABLE", firewall.DefaultTable), "nftables inet table (env DARSE_FW_TABLE)")
	render.Flags().StringVar(&input, "input", envOr("DARSE_FW_INPUT", string(firewall.InputAccept)), "host input policy: accept or drop (env DARSE_FW_INPUT)")
	render.Flags().StringVar(&allow, "input-allow", envOr("DARSE_FW_INPUT_ALLOW", portList(firewall.DefaultInputAllow)), "ports left open by --input drop (env DARSE_FW_INPUT_ALLOW)")
	render.Flags().StringVar(&tenantAllow, "tenant-allow", envOr("DARSE_FW_TENANT_ALLOW", portList(firewall.DefaultTenantHostAllow)), "host ports tenant containers may reach; empty for none (env DARSE_FW_TENANT_ALLOW)")
	render.Flags().StringVar(&egressDeny, "egress-deny", envOr("DARSE_FW_EGRESS_DENY", ""), "CIDRs tenant containers may not reach, besides link-local (env DARSE_FW_EGRESS_DENY)")
	render.Flags().StringVar(&label, "label", envOr("DARSE_FW_LABEL", ""), "only containers and networks with this label, KEY or KEY=VALUE (env DARSE_FW_LABEL)")
	render.Flags().StringVar(&stateFile, "state", "", "render from this JSON state (as darse fw state prints) instead of the engine")
	render.Flags().StringVar(&forward, "docker-forward", "auto", "Docker's IPv4 FORWARD policy: auto (read it), drop or accept")

	state := &cobra.Command{
		Use:   "state",
		Short: "Print, as JSON, the containers and networks the ruleset is computed from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine(cmd.Context())
			if err != nil {
				return err
			}
			st, err := e.Firewall(label).Snapshot(cmd.Context())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		},
	}
	state.Flags().StringVar(&label, "label", envOr("DARSE_FW_LABEL", ""), "only containers and networks with this label (env DARSE_FW_LABEL)")
	save := &cobra.Command{
		Use:   "save",
		Short: "Write the ruleset darse-fw applies now to <srv>/conf/firewall.nft, for boot (see README, \"Boot\")",
		Long: `Render the ruleset darse-fw computes for the running containers, with the
platform's firewall settings from darse.yml, and write it (nft -f syntax)
to <srv>/conf/firewall.nft. At boot, scripts/boot.sh loads it before the
engine starts any container, so tenants are kept apart from the first
packet; darse-fw then takes the table over. darse platform up saves it too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := a.saveFirewall(cmd.Context())
			if err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "firewall: ruleset saved to %s\n", path)
			}
			return err
		},
	}
	cmd.AddCommand(render, state, save)
	return cmd
}

// FirewallFile is where the ruleset is saved for boot, under <srv>/conf.
const firewallFile = "firewall.nft"

// saveFirewall renders the ruleset darse-fw would apply with the
// platform's settings and writes it to <srv>/conf/firewall.nft.
func (a *app) saveFirewall(ctx context.Context) (string, error) {
	p, err := a.Platform(ctx)
	if err != nil {
		return "", err
	}
	fw := p.Config.Firewall
	o := firewall.Options{Table: fw.Table, Srv: a.srv, Input: firewall.InputPolicy(fw.Input)}
	if o.EgressDeny, err = firewall.ParsePrefixes(strings.Join(fw.EgressDeny, ",")); err != nil {
		return "", fmt.Errorf("firewall.egress_deny: %w", err)
	}
	if drops, err := nft.New().ForwardDrops(ctx); err == nil {
		o.DockerForwardDrop = drops
	}
	e, err := a.Engine(ctx)
	if err != nil {
		return "", err
	}
	st, err := e.Firewall(fw.Label).Snapshot(ctx)
	if err != nil {
		return "", err
	}
	path := filepath.Join(a.srv, "conf", firewallFile)
	if err := render.WriteFile(path, []byte(firewall.Build(st, o).Text()), 0o600); err != nil {
		return "", fmt.Errorf("save the firewall ruleset: %w", err)
	}
	return path, nil
}

func portList(ps []firewall.Port) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
