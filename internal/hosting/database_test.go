package hosting

import (
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/template"
)

// A database gets its start period and one more check than its retries
// before it is declared not up; the error quotes its own log.
func TestDatabaseBudgetAndError(t *testing.T) {
	tp, err := template.Load("../../templates", "php-mariadb")
	if err != nil {
		t.Fatal(err)
	}
	if got := healthBudget(tp.Database.Health); got != 60*time.Second+4*35*time.Second {
		t.Errorf("budget = %s", got)
	}
	e := &DatabaseError{Site: "blog", Service: "db", State: "restarting", Logs: "mariadbd: Can't create/write to file './ibdata1'"}
	if !strings.Contains(e.Error(), `site "blog": database db did not come up (restarting)`) || !strings.Contains(e.Error(), "ibdata1") {
		t.Errorf("error = %q", e)
	}
}
