package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/darse/darse/internal/auth"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

func newUserCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Members of the platform: accounts, admins, quotas"}
	cmd.AddCommand(newUserAddCmd(a), newUserLsCmd(a), newUserPasswdCmd(a), newUserQuotaCmd(a))
	for _, c := range []struct {
		use, short string
		set        func(*store.Store) func(*cobra.Command, string) error
		done       string
	}{
		{"disable", "Disable a member: they can no longer log in and their sessions end", func(st *store.Store) func(*cobra.Command, string) error {
			return func(cmd *cobra.Command, n string) error { return st.SetDisabled(cmd.Context(), n, true) }
		}, "disabled"},
		{"enable", "Enable a disabled member", func(st *store.Store) func(*cobra.Command, string) error {
			return func(cmd *cobra.Command, n string) error { return st.SetDisabled(cmd.Context(), n, false) }
		}, "enabled"},
		{"grant-admin", "Make a member an admin", func(st *store.Store) func(*cobra.Command, string) error {
			return func(cmd *cobra.Command, n string) error { return st.SetAdmin(cmd.Context(), n, true) }
		}, "is now an admin"},
		{"revoke-admin", "Take admin rights away from a member", func(st *store.Store) func(*cobra.Command, string) error {
			return func(cmd *cobra.Command, n string) error { return st.SetAdmin(cmd.Context(), n, false) }
		}, "is no longer an admin"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:               c.use + " NAME",
			Short:             c.short,
			Args:              cobra.ExactArgs(1),
			ValidArgsFunction: a.completeUser(),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := validMember(args[0]); err != nil {
					return err
				}
				st, err := a.Store(cmd.Context())
				if err != nil {
					return err
				}
				if err := c.set(st)(cmd, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], c.done)
				return nil
			},
		})
	}
	return cmd
}

// readPassword asks twice on a terminal; otherwise it reads one line from
// stdin, so that scripts can pipe a password in (never an argument: it
// would show in ps and in shell history).
func readPassword(cmd *cobra.Command, prompt string) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), prompt)
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the two passwords differ")
		}
		return string(p1), auth.ValidatePassword(string(p1))
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	return pw, auth.ValidatePassword(pw)
}

// validMember checks a member's name before anything is opened.
func validMember(name string) error {
	if err := site.ValidateOwner(name); err != nil {
		return &site.FieldError{Field: "member name", Value: name, Rule: err.(*site.FieldError).Rule}
	}
	return nil
}

func newUserAddCmd(a *app) *cobra.Command {
	var admin bool
	var quota int
	cmd := &cobra.Command{
		Use:   "add NAME [--admin] [--quota N]",
		Short: "Create a member; the password is asked for, or read from stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := validMember(name); err != nil {
				return err
			}
			if quota < 0 {
				return &site.FieldError{Field: "--quota", Value: strconv.Itoa(quota), Rule: "must be 0 or more"}
			}
			st, err := a.Store(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := st.GetUser(cmd.Context(), name); err == nil {
				return fmt.Errorf("member %q: %w", name, store.ErrUserExists)
			}
			pw, err := readPassword(cmd, "Password for "+name+": ")
			if err != nil {
				return err
			}
			hash, err := auth.Hash(pw, auth.DefaultParams)
			if err != nil {
				return err
			}
			if err := st.CreateUser(cmd.Context(), store.User{Name: name, Hash: hash, Admin: admin, Quota: quota}); err != nil {
				return err
			}
			role := "member"
			if admin {
				role = "admin"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: created (%s, quota %d sites)\n", name, role, quota)
			return nil
		},
	}
	cmd.Flags().BoolVar(&admin, "admin", false, "make the member an admin")
	cmd.Flags().IntVar(&quota, "quota", store.DefaultQuota, "how many sites the member may own")
	return cmd
}

func newUserPasswdCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "passwd NAME",
		Short:             "Set a member's password (asked for, or read from stdin); their sessions end",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeUser(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validMember(args[0]); err != nil {
				return err
			}
			st, err := a.Store(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := st.GetUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			pw, err := readPassword(cmd, "New password for "+args[0]+": ")
			if err != nil {
				return err
			}
			hash, err := auth.Hash(pw, auth.DefaultParams)
			if err != nil {
				return err
			}
			if err := st.SetPassword(cmd.Context(), args[0], hash); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: password changed\n", args[0])
			return nil
		},
	}
}

func newUserQuotaCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "quota NAME N",
		Short:             "Set how many sites a member may own",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeUser(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validMember(args[0]); err != nil {
				return err
			}
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 || n > 1000 {
				return &site.FieldError{Field: "quota", Value: args[1], Rule: "must be a number from 0 to 1000"}
			}
			st, err := a.Store(cmd.Context())
			if err != nil {
				return err
			}
			if err := st.SetQuota(cmd.Context(), args[0], n); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: quota %d sites\n", args[0], n)
			return nil
		},
	}
}

func newUserLsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List members",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.Store(cmd.Context())
			if err != nil {
				return err
			}
			users, err := st.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			list := []userJSON{}
			for _, u := range users {
				n, err := st.CountSitesOwnedBy(cmd.Context(), u.Name)
				if err != nil {
					return err
				}
				list = append(list, userJSON{Name: u.Name, Admin: u.Admin, Disabled: u.Disabled, Sites: n, Quota: u.Quota, CreatedAt: u.CreatedAt.UTC()})
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tSITES\tQUOTA\tCREATED")
			for _, u := range list {
				role, state := "member", "active"
				if u.Admin {
					role = "admin"
				}
				if u.Disabled {
					state = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", u.Name, role, state, u.Sites, u.Quota, u.CreatedAt.Format("2006-01-02"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
