//go:build integration

package tests

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sscard/platform/tests/testenv"
)

// The local e-card authority confirms a scan login for any ID number (POST
// /local-ecard/act): qr-code must refuse to start with it unless the development switch
// is on, and refuse to start with no authority at all, naming the setting either way.
func TestLogin_LocalAuthorityOnlyInDevelopment(t *testing.T) {
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	bin := buildBinaries(t, env.Root)
	for _, c := range []struct {
		name      string
		overrides []string
		names     string
	}{
		{"development switch unset", []string{"sscard_development="}, "sscard_development=true"},
		{"development switch off", []string{"sscard_development=false"}, "sscard_development=true"},
		{"authority unset", []string{"ecard_authority="}, "ecard_authority is not set"},
		{"as stack.yml deploys it", []string{"ecard_authority=", "sscard_development="}, "ecard_authority is not set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "qr-code"))
			cmd.Env = env.FunctionEnv(dsn, c.overrides...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("qr-code kept running (serving the local authority); stderr:\n%s", stderr.String())
			}
			if err == nil {
				t.Fatal("qr-code exited 0: want a refusal to start")
			}
			if !strings.Contains(stderr.String(), c.names) {
				t.Errorf("want a message naming %q, got:\n%s", c.names, stderr.String())
			}
		})
	}
}
