//go:build !windows

package main

import (
	"os"
	"syscall"
)

// reexec replaces the process with the binary now at its path (after an upgrade swap or
// for restart-app); the state file was closed first.
func reexec(exe string) error {
	return syscall.Exec(exe, os.Args, os.Environ())
}

// diskHealth: "fault" under 64 MiB free where the state lives (the queue needs room).
func diskHealth(dir string) string {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return "fault"
	}
	free := s.Bavail * uint64(s.Bsize)
	if free < 64<<20 {
		return "fault"
	}
	return "ok"
}
