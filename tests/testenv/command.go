package testenv

import (
	"bytes"
	"context"
	"io"
)

// RunFunc is the testable body of a command: run(ctx, args, environ, stdout, stderr) → exit code.
type RunFunc func(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int

// Command runs a command's body with environ and returns its exit code and everything it
// printed (stdout, then stderr).
func Command(ctx context.Context, run RunFunc, environ []string) func(args ...string) (int, string) {
	return func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, environ, &out, &errb)
		return code, out.String() + errb.String()
	}
}
