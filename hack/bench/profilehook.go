package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// profileEnv names the file the profiling hook writes its CPU profile to.
const profileEnv = "FLIGHTDECK_BENCH_CPUPROFILE"

// profileHook is added to flightdeck's package main at build time (go build
// -overlay) when -cpuprofile is given: SIGUSR1 starts a CPU profile into
// $FLIGHTDECK_BENCH_CPUPROFILE, SIGUSR2 stops and writes it. flightdeck has
// no pprof endpoint of its own; the source tree is never changed.
const profileHook = `package main

import (
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func init() {
	path := os.Getenv("` + profileEnv + `")
	if path == "" {
		return
	}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var f *os.File
		for sig := range ch {
			switch {
			case sig == syscall.SIGUSR1 && f == nil:
				var err error
				if f, err = os.Create(path); err != nil {
					f = nil
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					f = nil
				}
			case sig == syscall.SIGUSR2 && f != nil:
				pprof.StopCPUProfile()
				f.Close()
				f = nil
			}
		}
	}()
}
`

// writeOverlay writes the go build -overlay file: the user's replacements,
// plus (with profiling) the hook placed in cmd/flightdeck. It returns the
// overlay file's path.
func writeOverlay(dir string, profiling bool, userOverlay string) (string, error) {
	replace := map[string]string{}
	if userOverlay != "" {
		b, err := os.ReadFile(userOverlay)
		if err != nil {
			return "", fmt.Errorf("-overlay: %w", err)
		}
		var in struct{ Replace map[string]string }
		if err := json.Unmarshal(b, &in); err != nil {
			return "", fmt.Errorf("-overlay %s: %w", userOverlay, err)
		}
		for k, v := range in.Replace {
			replace[k] = v
		}
	}
	if profiling {
		out, err := exec.CommandContext(context.Background(), "go", "env", "GOMOD").Output()
		if err != nil {
			return "", fmt.Errorf("finding the module root: %w", err)
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			return "", fmt.Errorf("finding the module root: run the bench from inside the flightdeck module")
		}
		hook := filepath.Join(dir, "profilehook.go")
		if err := os.WriteFile(hook, []byte(profileHook), 0o644); err != nil {
			return "", fmt.Errorf("writing the profiling hook: %w", err)
		}
		replace[filepath.Join(filepath.Dir(gomod), "cmd", "flightdeck", "zz_bench_profilehook.go")] = hook
	}
	b, err := json.Marshal(map[string]map[string]string{"Replace": replace})
	if err != nil {
		return "", err
	}
	overlay := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlay, b, 0o644); err != nil {
		return "", fmt.Errorf("writing the build overlay: %w", err)
	}
	return overlay, nil
}
