package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/flightdeck/flightdeck/internal/version"
)

func init() {
	commands["version"] = command{
		summary: "print the version of this build",
		run: func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintf(stdout, "flightdeck %s (%s, %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
