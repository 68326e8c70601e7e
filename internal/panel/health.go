package panel

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// readyTimeout bounds /readyz: a compose healthcheck gives up after its
// own timeout, and a hung engine must read as not ready, not as a hang.
const readyTimeout = 5 * time.Second

// ready answers /readyz: 200 when the store and the engine answer, 503
// naming which does not. /healthz only says the process serves. The
// causes go to the log, not to the answer: the route is public.
func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	var down []string
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("not ready: store", "err", err)
		down = append(down, "store: unreachable")
	}
	// A panel built without an engine (tests) has none to check.
	if s.engine != nil {
		if _, err := s.allContainers(ctx); err != nil {
			s.log.Warn("not ready: engine", "err", err)
			down = append(down, "engine: unreachable")
		}
	}
	if len(down) > 0 {
		c.String(http.StatusServiceUnavailable, strings.Join(down, "\n")+"\n")
		return
	}
	c.String(http.StatusOK, "ok\n")
}
