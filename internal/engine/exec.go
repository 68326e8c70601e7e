package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// maxExecStderr bounds the standard error an Exec keeps for its error.
const maxExecStderr = 64 << 10

// ExecError is a command run in a container that exited non-zero: its
// exit status and the end of what it printed on standard error.
type ExecError struct {
	Container string
	Cmd       string
	Code      int
	Stderr    string
}

func (e *ExecError) Error() string {
	lines := strings.Split(strings.TrimSpace(e.Stderr), "\n")
	if len(lines) > 4 {
		lines = lines[len(lines)-4:]
	}
	return fmt.Sprintf("%s in %s: exit status %d: %s", e.Cmd, e.Container, e.Code, strings.Join(lines, "; "))
}

// Exec runs cmd in the running container as user (uid:gid), without a
// terminal, with stdin (nil: none) as its standard input and its standard
// output streamed to stdout as it comes (a database dump, never held in
// memory nor in a file). It returns once the command exited, with an
// *ExecError when it exited non-zero.
func (e *Engine) Exec(ctx context.Context, container, user string, cmd []string, stdin io.Reader, stdout io.Writer) error {
	if len(cmd) == 0 {
		return errors.New("exec: no command")
	}
	created, err := e.c.ExecCreate(ctx, container, client.ExecCreateOptions{
		User: user, Cmd: cmd, AttachStdin: stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return fmt.Errorf("exec %s in %s: %w", cmd[0], container, err)
	}
	att, err := e.c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("exec %s in %s: %w", cmd[0], container, err)
	}
	defer att.Close()
	// A cancelled context closes the connection, which ends both copies.
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()
	inErr := make(chan error, 1)
	if stdin != nil {
		go func() {
			_, err := io.Copy(att.Conn, stdin)
			if cerr := att.CloseWrite(); err == nil {
				err = cerr
			}
			inErr <- err
		}()
	} else {
		inErr <- nil
	}
	var stderr bytes.Buffer
	_, err = stdcopy.StdCopy(stdout, &capped{w: &stderr, left: maxExecStderr}, att.Reader)
	if errors.Is(err, errCapped) {
		err = nil // the command's output went on; only its stderr was cut
	}
	// The output ends when the command exits: closing the connection
	// frees a copy of stdin the command left unread.
	att.Close()
	if ctx.Err() != nil {
		return fmt.Errorf("exec %s in %s: %w", cmd[0], container, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("exec %s in %s: output: %w", cmd[0], container, err)
	}
	res, err := e.c.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return fmt.Errorf("exec %s in %s: %w", cmd[0], container, err)
	}
	if res.Running {
		return fmt.Errorf("exec %s in %s: its output ended while it still runs", cmd[0], container)
	}
	if res.ExitCode != 0 {
		return &ExecError{Container: container, Cmd: cmd[0], Code: res.ExitCode, Stderr: stderr.String()}
	}
	select {
	case err := <-inErr:
		if err != nil {
			return fmt.Errorf("exec %s in %s: it exited before reading all its input: %w", cmd[0], container, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("exec %s in %s: %w", cmd[0], container, ctx.Err())
	}
	return nil
}
