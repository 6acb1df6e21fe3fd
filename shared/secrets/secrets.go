// Package secrets reads function secrets the way OpenFaaS and Knative mount them.
//
// OpenFaaS mounts each secret as a file: <mount>/<name>. Knative (and faas-cli's generated
// Knative manifests) mount a Kubernetes Secret as a directory: <mount>/<name>/<key>. Both
// layouts are accepted so the same image runs on either platform; local runs and tests
// point the mount path at a folder of their own.
package secrets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultMountPath is where OpenFaaS mounts secrets inside a function container.
const DefaultMountPath = "/var/openfaas/secrets"

// ErrNotFound reports a secret that is not mounted.
var ErrNotFound = errors.New("secret not found")

// Reader reads secrets below Dir.
type Reader struct{ Dir string }

// Read returns the trimmed value of secret name.
func (r Reader) Read(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("secret name %q is not a plain name", name)
	}
	p := filepath.Join(r.Dir, name)
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: %s (looked in %s)", ErrNotFound, name, r.Dir)
	}
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	if st.IsDir() {
		p, err = keyInDir(p, name)
		if err != nil {
			return "", err
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("secret %s is empty", name)
	}
	return v, nil
}

// Optional returns the secret, "" when it is not mounted, and an error for anything else.
func (r Reader) Optional(name string) (string, error) {
	v, err := r.Read(name)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return v, err
}

// keyInDir picks the file of a directory-mounted secret: the key named like the secret,
// else the only regular file (Kubernetes adds hidden ..data links, which are skipped).
func keyInDir(dir, name string) (string, error) {
	if st, err := os.Stat(filepath.Join(dir, name)); err == nil && !st.IsDir() {
		return filepath.Join(dir, name), nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	var files []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && !st.IsDir() {
			files = append(files, e.Name())
		}
	}
	if len(files) != 1 {
		return "", fmt.Errorf("secret %s is a directory with %d keys; expected a key named %q", name, len(files), name)
	}
	return filepath.Join(dir, files[0]), nil
}
