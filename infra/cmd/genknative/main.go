// Command genknative writes infra/knative/*.yaml from stack.yml and the events routing
// table. Run it from the repository root: go run ./infra/cmd/genknative
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/infra/knative"
	"github.com/sscard/platform/infra/stack"
)

func main() {
	stackFile := flag.String("stack", "stack.yml", "stack file")
	out := flag.String("out", "infra/knative", "output directory")
	flag.Parse()
	if err := run(*stackFile, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genknative:", err)
		os.Exit(1)
	}
}

func run(stackFile, out string) error {
	b, err := os.ReadFile(stackFile)
	if err != nil {
		return err
	}
	// Manifests carry the stack's defaults, not this machine's environment.
	f, err := stack.Parse(b, func(string) string { return "" })
	if err != nil {
		return err
	}
	files, err := knative.Generate(f, events.Routes())
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(out, n), files[n], 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", filepath.Join(out, n))
	}
	return nil
}
