// Command genschema writes the JSON Schema of every event type into
// events/schemas, replacing stale files, so the committed schemas always
// equal what events.Schema generates (TestSchemasUpToDate enforces it).
//
//	go run ./events/cmd/genschema            # from the repository root
//	go generate ./events                     # same, via events/doc.go
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sscard/platform/events"
)

func main() {
	dir := flag.String("dir", filepath.Join("events", "schemas"), "output directory")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "genschema:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := events.SchemaFiles()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Remove schemas of types that left the catalog; other files are not ours.
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, p := range old {
		if _, keep := files[filepath.Base(p)]; !keep {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for name, b := range files {
		if strings.ContainsAny(name, `/\`) {
			return fmt.Errorf("bad schema file name %q", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("genschema: wrote %d schemas to %s\n", len(files), dir)
	return nil
}
