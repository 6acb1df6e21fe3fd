package stack

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRepositoryStackFile(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range f.Validate(filepath.Join("..", "..")) {
		t.Error(e)
	}
	want := []string{"card-apply", "face-match", "kiosk", "login-poll", "loss-report", "photo-audit-alert", "qr-code", "reconcile", "sms-alert"}
	if got := f.Names(); !slices.Equal(got, want) {
		t.Errorf("want %v, got %v", want, got)
	}
	if s, ok := f.Functions["reconcile"].Schedule(); !ok || s != "30 18 * * *" {
		t.Errorf("reconcile schedule: got %q %v", s, ok)
	}
}

func TestParse_ExpandsVariablesLikeFaasCli(t *testing.T) {
	env := map[string]string{"TAG": "v1"}
	f, err := Parse([]byte(`version: 1.0
provider: {name: openfaas}
functions:
  a:
    image: ${REGISTRY:-reg}/a:${TAG:-latest}
    environment: {x: "${UNSET}"}
`), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Functions["a"].Image; got != "reg/a:v1" {
		t.Errorf("want reg/a:v1, got %q", got)
	}
	if got := f.Functions["a"].Environment["x"]; got != "" {
		t.Errorf("unset without default: want empty, got %q", got)
	}
	if _, err := Parse([]byte("functions:\n  a:\n    imagee: x\n"), os.Getenv); err == nil {
		t.Error("unknown field: want an error")
	}
}

// faas-cli's envsubst rejects or rewrites these (even in comments); Parse must not quietly
// produce a different file.
func TestParse_RejectsOtherSubstitutions(t *testing.T) {
	for _, src := range []string{
		"# values in ${...} come from the environment\nversion: 1.0\n",
		"version: 1.0\nprovider: {name: openfaas, gateway: ${URL-http://x}}\n",
		"version: 1.0\nprovider: {name: openfaas, gateway: ${URL:-${OTHER}}}\n",
		"version: 1.0\nprovider: {name: openfaas, gateway: http://x/$$}\n",
	} {
		if _, err := Parse([]byte(src), func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "unsupported substitution") {
			t.Errorf("%q: want an unsupported substitution error, got %v", src, err)
		}
	}
}

// fixture writes a minimal valid repository with one function and returns its root.
func fixture(t *testing.T, dirs ...string) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "infra", "openfaas"), 0o755))
	must(os.WriteFile(filepath.Join(root, CanonicalDockerfile), []byte("FROM x\n"), 0o644))
	for _, d := range dirs {
		must(os.MkdirAll(filepath.Join(root, "functions", d), 0o755))
		must(os.WriteFile(filepath.Join(root, "functions", d, "Dockerfile"), []byte("FROM x\n"), 0o644))
	}
	return root
}

const validFn = `
    lang: dockerfile
    handler: ./functions/fn
    image: r/fn:1
    build_args: {FN: fn}
    environment: {read_timeout: 11s, write_timeout: "11", exec_timeout: 10s, max_inflight: "10", GOMEMLIMIT: 230MiB}
    limits: {memory: 256Mi, cpu: "1"}
    requests: {memory: 128Mi, cpu: 100m}
    readonly_root_filesystem: true
    labels: {com.openfaas.scale.min: "1", com.openfaas.scale.max: "5"}
    annotations: {topic: cron-function, schedule: "*/5 * * * *"}
    secrets: [postgres-password]
`

func stackWith(fn string) string {
	return "version: 1.0\nprovider: {name: openfaas}\nconfiguration: {copy: [./go.mod, ./go.sum, ./shared, ./events, ./functions]}\nfunctions:\n  fn:" + fn
}

func TestValidate_Rules(t *testing.T) {
	cases := []struct {
		name, stack, want string
		dirs              []string
	}{
		{"valid", stackWith(validFn), "", []string{"fn"}},
		{"bad name", strings.Replace(stackWith(validFn), "  fn:", "  Fn_1:", 1), "DNS-1123", []string{"fn"}},
		{"missing timeout", stackWith(strings.Replace(validFn, "exec_timeout: 10s, ", "", 1)), "exec_timeout is missing", []string{"fn"}},
		{"exec beyond write", stackWith(strings.Replace(validFn, "exec_timeout: 10s", "exec_timeout: 12s", 1)), "must not exceed", []string{"fn"}},
		{"exec beyond gateway", stackWith(strings.NewReplacer("exec_timeout: 10s", "exec_timeout: 130s", "read_timeout: 11s", "read_timeout: 131s", `write_timeout: "11"`, `write_timeout: "131"`).Replace(validFn)), "upstream_timeout", []string{"fn"}},
		{"bad schedule", stackWith(strings.Replace(validFn, "*/5 * * * *", "every five minutes", 1)), "does not parse", []string{"fn"}},
		{"unlisted directory", stackWith(validFn), "functions/other: directory not listed", []string{"fn", "other"}},
		{"missing handler dir", stackWith(validFn), "does not exist", nil},
		{"wrong FN", stackWith(strings.Replace(validFn, "{FN: fn}", "{FN: other}", 1)), "build_args.FN", []string{"fn"}},
		{"scale min above max", stackWith(strings.Replace(validFn, `scale.min: "1"`, `scale.min: "9"`, 1)), "exceeds", []string{"fn"}},
		{"bad secret", stackWith(strings.Replace(validFn, "[postgres-password]", "[Postgres_Password]", 1)), "secrets", []string{"fn"}},
		{"no limits", stackWith(strings.Replace(validFn, "limits: {memory: 256Mi, cpu: \"1\"}", "", 1)), "limits/requests", []string{"fn"}},
		{"GOMEMLIMIT", stackWith(strings.Replace(validFn, "GOMEMLIMIT: 230MiB", "GOMEMLIMIT: 256MiB", 1)), "GOMEMLIMIT", []string{"fn"}},
		{"writable root", stackWith(strings.Replace(validFn, "readonly_root_filesystem: true", "", 1)), "readonly_root_filesystem", []string{"fn"}},
		{"lang", stackWith(strings.Replace(validFn, "lang: dockerfile", "lang: golang-http", 1)), "lang", []string{"fn"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := fixture(t, c.dirs...)
			f, err := Parse([]byte(c.stack), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			errs := f.Validate(root)
			if c.want == "" {
				for _, e := range errs {
					t.Errorf("want valid, got %v", e)
				}
				return
			}
			found := false
			for _, e := range errs {
				found = found || strings.Contains(e.Error(), c.want)
			}
			if !found {
				t.Errorf("want an error containing %q, got %v", c.want, errs)
			}
		})
	}
}

func TestValidate_DockerfileMustBeTheCanonicalCopy(t *testing.T) {
	root := fixture(t, "fn")
	if err := os.WriteFile(filepath.Join(root, "functions", "fn", "Dockerfile"), []byte("FROM y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := Parse([]byte(stackWith(validFn)), func(string) string { return "" })
	errs := f.Validate(root)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "copy of") {
		t.Errorf("want one error about the Dockerfile copy, got %v", errs)
	}
}
