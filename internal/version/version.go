// Package version holds the build's version string, set at link time by the
// Makefile (-ldflags "-X github.com/flightdeck/flightdeck/internal/version.Version=...").
// The Fly client sends it in its User-Agent and `flightdeck version` prints it.
package version

import "runtime/debug"

// Version is the release or git description of this build; "dev" when the
// binary was built without the Makefile.
var Version = "dev"

// String returns Version, falling back to the module version recorded by the
// Go toolchain when the linker flag was not set.
func String() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}

// UserAgent is the User-Agent header flightdeck sends to the Fly API.
func UserAgent() string { return "flightdeck/" + String() }
