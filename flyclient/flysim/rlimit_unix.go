//go:build unix

package flysim

import (
	"fmt"
	"syscall"
)

// RaiseOpenFileLimit raises this process's soft RLIMIT_NOFILE to its hard
// limit and returns the new soft and hard limits. Every listening machine
// holds one file descriptor (plus one per open connection), so 10,000
// machines need more than the usual soft limit of 1024.
func RaiseOpenFileLimit() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("reading the open file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, 0, fmt.Errorf("raising the open file limit to %d: %w", lim.Max, err)
		}
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}
