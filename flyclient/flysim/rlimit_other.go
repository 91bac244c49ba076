//go:build !unix

package flysim

import "errors"

// RaiseOpenFileLimit is not supported on this platform.
func RaiseOpenFileLimit() (soft, hard uint64, err error) {
	return 0, 0, errors.New("raising the open file limit is not supported on this platform")
}
