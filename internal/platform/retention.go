package platform

import (
	"strconv"
	"strings"
	"time"

	"github.com/darse/darse/internal/site"
)

// Retention is how long `darse prune` keeps what the platform leaves
// behind: the final archives `site rm` writes, and ended operations in
// the log. Each is a number of days, "90d"; left out, the default.
type Retention struct {
	Archives   string `yaml:"archives"`
	Operations string `yaml:"operations"`
}

// Defaults: a season of archives (time to ask for one back), half a year
// of operations (enough to answer "who did what" after an incident).
const (
	DefaultArchivesRetention   = "90d"
	DefaultOperationsRetention = "180d"
)

// ArchivesAge is how old an archive must be to be removed.
func (r Retention) ArchivesAge() time.Duration {
	d, _ := parseDays(orDefault(r.Archives, DefaultArchivesRetention))
	return d
}

// OperationsAge is how long ago an operation must have ended to be deleted.
func (r Retention) OperationsAge() time.Duration {
	d, _ := parseDays(orDefault(r.Operations, DefaultOperationsRetention))
	return d
}

func (r Retention) validate() error {
	for _, f := range []struct{ key, v string }{{"retention.archives", r.Archives}, {"retention.operations", r.Operations}} {
		if f.v == "" {
			continue
		}
		if _, ok := parseDays(f.v); !ok {
			return &site.FieldError{Field: f.key, Value: f.v, Rule: "must be a positive number of days such as 90d"}
		}
	}
	return nil
}

// maxDays keeps the duration from overflowing (about 290 years).
const maxDays = 100000

// parseDays reads "Nd" with N a positive whole number.
func parseDays(s string) (time.Duration, bool) {
	n, ok := strings.CutSuffix(s, "d")
	if !ok || n == "" || strings.TrimLeft(n, "0123456789") != "" {
		return 0, false
	}
	days, err := strconv.Atoi(n)
	if err != nil || days < 1 || days > maxDays {
		return 0, false
	}
	return time.Duration(days) * 24 * time.Hour, true
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
