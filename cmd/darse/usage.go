package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// usageError is a command line darse did not understand: an unknown
// command or flag, a wrong number of arguments. It exits 2, where a
// failure exits 1, so that scripts never take a typo for success.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// usagef makes a one-line usage error naming the command.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	msg := strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ")
	if !strings.Contains(msg, fmt.Sprintf("%q", cmd.CommandPath())) {
		msg += fmt.Sprintf(" for %q", cmd.CommandPath())
	}
	return &usageError{msg: msg + fmt.Sprintf(" (see %s --help)", cmd.CommandPath())}
}

// strictUsage makes every command of the tree refuse what it does not
// understand. Cobra lets a command that only groups others print its help
// and succeed on any argument (`darse site bogus` exits 0): those get a
// RunE that prints help only when called bare, and an Args that refuses
// the rest. Every other Args check and flag error becomes a usageError.
func strictUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef(cmd, "%v", err)
	})
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.HasSubCommands() && !c.Runnable():
			c.Args = unknownSubcommand
			c.SuggestionsMinimumDistance = 2
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		case c.Args != nil:
			check := c.Args
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return usagef(cmd, "%v", err)
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownSubcommand is the Args of a command that only groups others.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(", did you mean %q?", s[0])
	}
	return usagef(cmd, "%s", msg)
}

// newHelpCmd replaces cobra's help command, which prints "Unknown help
// topic" and succeeds.
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Help about any command",
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			c, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range c.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usagef(cmd, "unknown command %q for \"darse help\"", strings.Join(args, " "))
			}
			return c.Help()
		},
	}
}
