package stack

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"
)

// dns1123 is a DNS-1123 label that starts with a letter (OpenFaaS and Knative names).
var dns1123 = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// cronParser is the parser cron-connector uses: five fields plus descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// CanonicalDockerfile is the one Dockerfile every function directory carries a copy of.
const CanonicalDockerfile = "infra/openfaas/Dockerfile"

// Validate checks the stack against the repository at root and returns every problem.
// faas-cli accepts much of what would break at deploy time (bad names, silently skipped
// schedules, timeouts that disagree), so this is the gate.
func (f *File) Validate(root string) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if f.Version != "1.0" {
		fail("version: want \"1.0\", got %q", f.Version)
	}
	if f.Provider.Name != "openfaas" {
		fail("provider.name: want openfaas, got %q", f.Provider.Name)
	}
	for _, want := range []string{"./go.mod", "./go.sum", "./shared", "./events", "./functions"} {
		if !slices.Contains(f.Configuration.Copy, want) {
			fail("configuration.copy: %s missing (the build context needs it)", want)
		}
	}
	canonical, err := os.ReadFile(filepath.Join(root, CanonicalDockerfile))
	if err != nil {
		fail("%s: %v", CanonicalDockerfile, err)
	}

	dirs, _ := os.ReadDir(filepath.Join(root, "functions"))
	for _, d := range dirs {
		if d.IsDir() {
			if _, ok := f.Functions[d.Name()]; !ok {
				fail("functions/%s: directory not listed in stack.yml", d.Name())
			}
		}
	}
	for _, name := range f.Names() {
		fn := f.Functions[name]
		at := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s.%s: %s", name, field, fmt.Sprintf(format, args...)))
		}
		if !dns1123.MatchString(name) {
			at("name", "not a DNS-1123 label (lowercase letters, digits, '-', starting with a letter, ≤ 63)")
		}
		if fn.Lang != "dockerfile" {
			at("lang", "want dockerfile (one root go.mod; see infra/openfaas/README.md), got %q", fn.Lang)
		}
		if fn.Image == "" {
			at("image", "missing")
		}
		if fn.Handler != "./functions/"+name {
			at("handler", "want ./functions/%s, got %q", name, fn.Handler)
		} else if st, err := os.Stat(filepath.Join(root, fn.Handler)); err != nil || !st.IsDir() {
			at("handler", "%s does not exist", fn.Handler)
		} else if canonical != nil {
			df, err := os.ReadFile(filepath.Join(root, fn.Handler, "Dockerfile"))
			if err != nil || !bytes.Equal(df, canonical) {
				at("handler", "%s/Dockerfile must be a copy of %s", fn.Handler, CanonicalDockerfile)
			}
		}
		if fn.BuildArgs["FN"] != name {
			at("build_args.FN", "want %q, got %q", name, fn.BuildArgs["FN"])
		}
		read, write, exec, err := fn.Timeouts()
		if err != nil {
			at("environment", "%v", err)
		} else {
			if exec > read || exec > write {
				at("environment", "exec_timeout %s must not exceed read_timeout %s or write_timeout %s", exec, read, write)
			}
			if exec >= GatewayUpstreamTimeout {
				at("environment", "exec_timeout %s must stay below the gateway upstream_timeout %s", exec, GatewayUpstreamTimeout)
			}
		}
		if v, ok := fn.Environment["max_inflight"]; ok {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				at("environment.max_inflight", "want a non-negative integer, got %q", v)
			}
		}
		minScale, maxScale := 1, 5 // OpenFaaS defaults
		if v, ok := fn.Labels["com.openfaas.scale.min"]; ok {
			if minScale, err = strconv.Atoi(v); err != nil || minScale < 0 {
				at("labels.com.openfaas.scale.min", "want a non-negative integer, got %q", v)
			}
		}
		if v, ok := fn.Labels["com.openfaas.scale.max"]; ok {
			if maxScale, err = strconv.Atoi(v); err != nil || maxScale < 1 {
				at("labels.com.openfaas.scale.max", "want a positive integer, got %q", v)
			}
		}
		if minScale > maxScale {
			at("labels", "com.openfaas.scale.min %d exceeds com.openfaas.scale.max %d", minScale, maxScale)
		}
		if fn.Annotations["topic"] == "cron-function" {
			s, ok := fn.Annotations["schedule"]
			if !ok {
				at("annotations.schedule", "missing for topic cron-function")
			} else if _, err := cronParser.Parse(s); err != nil {
				// cron-connector would skip it without a word.
				at("annotations.schedule", "%q does not parse: %v", s, err)
			}
		}
		// Restricted clusters refuse pods without requests and limits, and Go needs
		// GOMEMLIMIT below the memory limit or it is OOM-killed before it collects.
		if fn.Limits == nil || fn.Limits.Memory == "" || fn.Limits.CPU == "" || fn.Requests == nil ||
			fn.Requests.Memory == "" || fn.Requests.CPU == "" {
			at("limits/requests", "want memory and cpu in both")
		} else if !strings.HasSuffix(fn.Limits.Memory, "Mi") {
			at("limits.memory", "want Mi (Kubernetes form), got %q", fn.Limits.Memory)
		} else if mi, err := strconv.Atoi(strings.TrimSuffix(fn.Limits.Memory, "Mi")); err != nil {
			at("limits.memory", "%v", err)
		} else if g := fn.Environment["GOMEMLIMIT"]; g != strconv.Itoa(mi*9/10)+"MiB" {
			at("environment.GOMEMLIMIT", "want %dMiB (90%% of limits.memory), got %q", mi*9/10, g)
		}
		if !fn.ReadOnlyRootFS {
			at("readonly_root_filesystem", "want true")
		}
		for _, s := range fn.Secrets {
			if !dns1123.MatchString(s) {
				at("secrets", "%q is not a DNS-1123 name", s)
			}
		}
	}
	return errs
}
