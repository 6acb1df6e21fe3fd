package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRead_BothLayouts(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "flat"), []byte(" s3cret\n"), 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "knative", "..data"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "knative", "knative"), []byte("kv"), 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "onekey"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "onekey", "password"), []byte("pw"), 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "twokeys"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "twokeys", "a"), []byte("a"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "twokeys", "b"), []byte("b"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "empty"), []byte("  \n"), 0o600))

	r := Reader{Dir: dir}
	for name, want := range map[string]string{"flat": "s3cret", "knative": "kv", "onekey": "pw"} {
		got, err := r.Read(name)
		if err != nil || got != want {
			t.Errorf("Read(%q): want %q, got %q, %v", name, want, got, err)
		}
	}
	for _, name := range []string{"twokeys", "empty", "../flat", ""} {
		if _, err := r.Read(name); err == nil {
			t.Errorf("Read(%q): want an error, got none", name)
		}
	}
	if _, err := r.Read("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read(missing): want ErrNotFound, got %v", err)
	}
	if v, err := r.Optional("missing"); v != "" || err != nil {
		t.Errorf("Optional(missing): want empty and nil, got %q, %v", v, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
