//go:build windows

package main

import (
	"os"
	"os/exec"
)

// reexec starts the binary now at its path and exits: Windows has no exec, so the new
// process starts while this one ends (the service manager's restart policy is the
// fallback when that fails).
func reexec(exe string) error {
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	os.Exit(0)
	return nil
}

// diskHealth is not measured on Windows yet.
func diskHealth(string) string { return "ok" }
