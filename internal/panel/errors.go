package panel

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// Errors the handlers return; status() maps every error to its HTTP status.
var (
	// errNotFound also answers for what exists but is not the member's:
	// another member's site is indistinguishable from no site.
	errNotFound = errors.New("not found")
	errCSRF     = errors.New("this form has expired or did not come from the panel; reload the page and try again")
	errLogin    = errors.New("wrong member name or password")
)

// notFoundError is a 404 with a message of its own.
func notFoundError(msg string) error { return notFoundMsg(msg) }

type notFoundMsg string

func (e notFoundMsg) Error() string        { return string(e) }
func (e notFoundMsg) Is(target error) bool { return target == errNotFound }

// tooLarge is a request body over its limit.
type tooLarge struct{ limit int64 }

func (e tooLarge) Error() string {
	return fmt.Sprintf("this upload is larger than %d MiB, the limit", e.limit>>20)
}

// rateLimited is a refused login attempt.
type rateLimited struct{ wait time.Duration }

func (e rateLimited) Error() string {
	secs := int(e.wait.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return fmt.Sprintf("too many failed logins: wait %d seconds before trying again", secs)
}

// status is the one place errors become HTTP statuses.
func status(err error) int {
	var fe *site.FieldError
	var rl rateLimited
	var tl tooLarge
	switch {
	case errors.As(err, &tl):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errNotFound), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errCSRF):
		return http.StatusForbidden
	case errors.Is(err, errLogin):
		return http.StatusUnauthorized
	case errors.As(err, &rl):
		return http.StatusTooManyRequests
	case errors.Is(err, store.ErrQuota), errors.Is(err, store.ErrPending), errors.Is(err, store.ErrUserExists),
		errors.Is(err, store.ErrLastAdmin), errors.Is(err, store.ErrKeyExists), errors.Is(err, store.ErrForwardExists),
		errors.Is(err, store.ErrNoFreePort):
		return http.StatusConflict
	case errors.Is(err, hosting.ErrInput), errors.As(err, &fe):
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// message is what a member reads: the error itself for their own
// mistakes, a generic line for the platform's (logged in full).
func message(err error) string {
	switch {
	case status(err) == http.StatusInternalServerError:
		return "Something went wrong on the platform's side. The operators can find the details in the panel's log."
	case err == errNotFound:
		return "There is nothing here, or it is not yours."
	}
	return err.Error()
}

// handle adapts a handler returning an error: errors become a page (or
// JSON for scripts) with the status status() gives.
func (s *Server) handle(fn func(*gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		err := fn(c)
		if err == nil {
			return
		}
		s.fail(c, err)
	}
}

func (s *Server) fail(c *gin.Context, err error) {
	code := status(err)
	if code == http.StatusInternalServerError {
		s.log.Error("panel request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	}
	var rl rateLimited
	if errors.As(err, &rl) {
		c.Header("Retry-After", strconv.Itoa(int(rl.wait.Round(time.Second)/time.Second)+1))
	}
	if wantsJSON(c) {
		c.AbortWithStatusJSON(code, jsonError{Error: message(err)})
		return
	}
	s.render(c, code, "error", errorView{Page: s.page(c, http.StatusText(code)), Status: code, Message: message(err)})
	c.Abort()
}

type jsonError struct {
	Error string `json:"error"`
}

func wantsJSON(c *gin.Context) bool {
	return c.GetHeader("Accept") == "application/json" || c.GetHeader("X-Requested-With") == "fetch"
}

// recover turns a panic into a 500 page instead of a dropped connection.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.fail(c, fmt.Errorf("panic: %v", r))
		}
	}()
	c.Next()
}
