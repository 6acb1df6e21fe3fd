// Package stack reads and checks the OpenFaaS stack file (stack.yml). The local gateway,
// the Knative generator and the tests all use this one model, so the file that deploys
// is the file that runs locally.
package stack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sscard/platform/shared/envconf"
)

// GatewayUpstreamTimeout is the OpenFaaS gateway upstream_timeout this stack requires:
// every exec_timeout must stay below it or the gateway answers 502 while the function
// still works (openfaas/faas#1688).
const GatewayUpstreamTimeout = 125 * time.Second

// File is a stack file.
type File struct {
	Version       string              `yaml:"version"`
	Provider      Provider            `yaml:"provider"`
	Functions     map[string]Function `yaml:"functions"`
	Configuration Configuration       `yaml:"configuration"`
}

// Provider names the platform.
type Provider struct {
	Name    string `yaml:"name"`
	Gateway string `yaml:"gateway"`
}

// Function is one function's deployment.
type Function struct {
	Lang        string            `yaml:"lang"`
	Handler     string            `yaml:"handler"`
	Image       string            `yaml:"image"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	BuildArgs   map[string]string `yaml:"build_args"`
	Limits      *Resources        `yaml:"limits"`
	Requests    *Resources        `yaml:"requests"`
	// ReadOnlyRootFS: only /tmp is writable (faas-netes mounts an emptyDir there).
	ReadOnlyRootFS bool `yaml:"readonly_root_filesystem"`
}

// Resources are Kubernetes quantities ("128Mi", "500m").
type Resources struct {
	Memory string `yaml:"memory"`
	CPU    string `yaml:"cpu"`
}

// Configuration holds build-wide settings.
type Configuration struct {
	Copy []string `yaml:"copy"`
}

// Load reads path, expanding ${VAR} and ${VAR:-default} from the process environment as
// faas-cli does.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, os.Getenv)
}

// Parse expands variables with getenv and decodes strictly (unknown fields are errors).
func Parse(data []byte, getenv func(string) string) (*File, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("stack file is empty")
	}
	expanded, err := expand(string(data), getenv)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader([]byte(expanded)))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	return &f, nil
}

// varRef is the part of faas-cli's envsubst (drone/envsubst) this stack uses: ${VAR} and
// ${VAR:-default}, the default holding no '$' or '}'.
var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}$\n]*))?\}`)

// otherRef is anything else envsubst would treat specially: other ${...} forms, nested
// defaults, and "$$" (an escape). faas-cli either rejects or rewrites those, so they
// are errors here rather than silently different values.
var otherRef = regexp.MustCompile(`\$[{$]`)

// expand substitutes ${VAR} and ${VAR:-default} (the default also when VAR is empty, as
// envsubst does); an unset VAR without default becomes "".
func expand(s string, getenv func(string) string) (string, error) {
	for i, line := range strings.Split(varRef.ReplaceAllString(s, ""), "\n") {
		if m := otherRef.FindStringIndex(line); m != nil {
			return "", fmt.Errorf("stack: line %d: unsupported substitution near %q (use ${VAR} or ${VAR:-default}, also in comments)",
				i+1, line[m[0]:min(len(line), m[0]+20)])
		}
	}
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		if v := getenv(sub[1]); v != "" {
			return v
		}
		return sub[3]
	}), nil
}

// Names returns the function names, sorted.
func (f *File) Names() []string {
	out := make([]string, 0, len(f.Functions))
	for n := range f.Functions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Schedule returns the cron-connector schedule when the function is annotated with
// topic "cron-function".
func (fn Function) Schedule() (string, bool) {
	if fn.Annotations["topic"] != "cron-function" {
		return "", false
	}
	s, ok := fn.Annotations["schedule"]
	return s, ok
}

// Timeouts parses read_timeout, write_timeout and exec_timeout as of-watchdog does (Go
// durations or whole seconds).
func (fn Function) Timeouts() (read, write, exec time.Duration, err error) {
	var errs []error
	parse := func(key string) time.Duration {
		v, ok := fn.Environment[key]
		if !ok || v == "" {
			errs = append(errs, fmt.Errorf("%s is missing", key))
			return 0
		}
		d, perr := envconf.ParseDuration(v)
		if perr != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, perr))
		}
		return d
	}
	read, write, exec = parse("read_timeout"), parse("write_timeout"), parse("exec_timeout")
	return read, write, exec, errors.Join(errs...)
}

// TopicsAnnotation lists, comma-separated, the CloudEvent types a function consumes. The
// event connector delivers by the events catalog (events.Routes); the annotation shows the
// same on the deployed function and a test keeps the two equal. It is not the OpenFaaS
// "topic" annotation: cron-connector compares that one with "cron-function" for equality,
// and three consumers are also scheduled.
const TopicsAnnotation = "events.sscard.cn/topics"

// Topics returns the function's TopicsAnnotation as a list.
func (fn Function) Topics() []string {
	var out []string
	for t := range strings.SplitSeq(fn.Annotations[TopicsAnnotation], ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}
