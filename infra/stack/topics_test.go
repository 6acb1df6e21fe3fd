package stack

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sscard/platform/events"
)

// Every consumer advertises exactly the types the events catalog routes to it.
func TestRepositoryStackFile_TopicsMatchRoutes(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, r := range events.Routes() {
		want[r.Consumer] = append(want[r.Consumer], string(r.Type))
	}
	for _, name := range f.Names() {
		w := want[name]
		slices.Sort(w)
		got := f.Functions[name].Topics()
		if !slices.Equal(got, w) {
			t.Errorf("%s: annotations.%s: want %q, got %q", name, TopicsAnnotation, strings.Join(w, ","), strings.Join(got, ","))
		}
	}
}

// make secrets creates exactly the secrets the functions mount.
func TestSecretsScriptCreatesEverySecretTheStackMounts(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, name := range f.Names() {
		for _, s := range f.Functions[name].Secrets {
			if !slices.Contains(want, s) {
				want = append(want, s)
			}
		}
	}
	slices.Sort(want)
	out, err := exec.Command("bash", filepath.Join("..", "scripts", "secrets.sh"), "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out)); !slices.Equal(got, want) {
		t.Errorf("secrets.sh list: want %v, got %v", want, got)
	}
}
