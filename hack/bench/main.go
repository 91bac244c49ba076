// Command bench measures flightdeck against the Fly simulator, as `make bench`
// runs it: for each fleet size N it starts a throwaway PostgreSQL (one per
// run, a fresh database per N), the simulator as its own process
// (`flightdeck sim`) with N machines already started and answering, N
// deployment rows that name those machines (adopted as they are), and
// `flightdeck run` as a separate process, so that its CPU time and peak RSS
// can be read from /proc. Then, per N:
//
//  1. warm-up: wait until every row was probed once (the probe count reaches N
//     and the start-up spread of one CHECK_INTERVAL is over), then one more
//     CHECK_INTERVAL;
//  2. healthy window: nothing is broken; flightdeck's CPU time, its probes, the
//     database writes (pg_stat_user_tables) and the Fly API calls (the
//     simulator's request counts) over the window give the cost of a healthy
//     probe;
//  3. break window: 5% of the machines start answering 500 and another 5% are
//     autostopped (as the Fly proxy does), each at a random moment of the
//     window; the detection latency of each is the time from the moment the
//     bench asked the simulator to break it to the moment flightdeck wrote the
//     transition (the deployment_events row, stamped by the writer), until
//     every break was detected or a deadline passed; after a pause that lets
//     PostgreSQL's statistics catch up, the writes per status change and the
//     Fly API calls per minute are read;
//  4. the deployments nobody touched must have no event at all and still be
//     running (wrong transitions), and the broken ones exactly one event each.
//
// It prints one table over every N with the targets of issue 6 and whether
// they were met (a missed target says MISSED); it exits non-zero only when it
// could not run.
//
// Usage:
//
//	go run ./hack/bench [-flightdeck bin/flightdeck] [-n 1000,10000] [-check-interval 5s] ...
//
// Without -flightdeck it builds the binary itself (never with -race).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flightdeck/flightdeck/internal/envtest"
)

// settings are the bench's flags.
type settings struct {
	flightdeck          string
	sizes               []int
	checkInterval       time.Duration
	probeTimeout        time.Duration
	startupPollInterval time.Duration
	warmup              time.Duration
	healthy             time.Duration
	window              time.Duration
	statsFlush          time.Duration
	breakFraction       float64
	stopFraction        float64
	maxConcurrent       int
	seed                uint64
	keepLogs            bool
	extraEnv            []string
	cpuProfile          string
	overlay             string
}

// detectionTarget is issue 6's bound on p99 detection latency:
// CHECK_INTERVAL + PROBE_TIMEOUT + the confirming re-probe + 1s.
func (s settings) detectionTarget() time.Duration {
	return s.checkInterval + s.probeTimeout + s.startupPollInterval + time.Second
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags(args []string, stderr io.Writer) (settings, error) {
	var (
		s     settings
		sizes string
		env   listFlag
	)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.flightdeck, "flightdeck", "", "flightdeck binary to measure (default: build ./cmd/flightdeck, without -race, into a temporary directory)")
	fs.StringVar(&sizes, "n", "1000,10000", "comma-separated fleet sizes (deployments = machines)")
	fs.DurationVar(&s.checkInterval, "check-interval", 5*time.Second, "CHECK_INTERVAL of flightdeck")
	fs.DurationVar(&s.probeTimeout, "probe-timeout", 2*time.Second, "PROBE_TIMEOUT of flightdeck (must be below -check-interval)")
	fs.DurationVar(&s.startupPollInterval, "startup-poll-interval", 2*time.Second, "STARTUP_POLL_INTERVAL of flightdeck (the confirming re-probe's delay)")
	fs.DurationVar(&s.warmup, "warmup", 0, "warm-up after every row was probed once (default and minimum: one -check-interval)")
	fs.DurationVar(&s.healthy, "healthy", 0, "healthy window: nothing broken (default 3 × -check-interval)")
	fs.DurationVar(&s.window, "window", 0, "break window over which the machines are broken at random moments (default 2 × -check-interval)")
	fs.DurationVar(&s.statsFlush, "stats-flush", 11*time.Second, "pause before reading pg_stat after the last detection (PostgreSQL flushes backend statistics within 10s)")
	fs.Float64Var(&s.breakFraction, "break-fraction", 0.05, "fraction of machines whose /status starts answering 500")
	fs.Float64Var(&s.stopFraction, "stop-fraction", 0.05, "fraction of machines autostopped")
	fs.IntVar(&s.maxConcurrent, "max-concurrent-reconciles", 0, "MAX_CONCURRENT_RECONCILES of flightdeck (0: flightdeck's default)")
	fs.Uint64Var(&s.seed, "seed", 0, "random seed of the choice and timing of the breaks (0: from the clock; printed)")
	fs.BoolVar(&s.keepLogs, "keep", false, "keep the run directory (logs of flightdeck and the simulator) after a successful run")
	fs.Var(&env, "env", "extra KEY=VALUE for flightdeck's environment (repeatable), e.g. GOGC=200")
	fs.StringVar(&s.cpuProfile, "cpuprofile", "", "write a CPU profile of flightdeck's healthy and break windows at the largest N to this file (builds flightdeck with a profiling hook added through go build -overlay; the source tree is not changed)")
	fs.StringVar(&s.overlay, "overlay", "", "build flightdeck with this go build -overlay file (to measure a change without editing the tree); implies building")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 20 || n > 15000 {
			return s, fmt.Errorf("-n: %q is not a fleet size between 20 and 15000", f)
		}
		s.sizes = append(s.sizes, n)
	}
	sort.Ints(s.sizes)
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return s, fmt.Errorf("-env: %q is not KEY=VALUE", kv)
		}
	}
	s.extraEnv = env
	if s.warmup < s.checkInterval {
		s.warmup = s.checkInterval
	}
	if s.healthy <= 0 {
		s.healthy = 3 * s.checkInterval
	}
	if s.window <= 0 {
		s.window = 2 * s.checkInterval
	}
	switch {
	case s.checkInterval <= 0 || s.probeTimeout <= 0 || s.startupPollInterval <= 0:
		return s, errors.New("-check-interval, -probe-timeout and -startup-poll-interval must be positive")
	case s.probeTimeout >= s.checkInterval:
		return s, errors.New("-probe-timeout must be below -check-interval (flightdeck's own rule)")
	case s.startupPollInterval > s.checkInterval:
		return s, errors.New("-startup-poll-interval must not exceed -check-interval (flightdeck's own rule)")
	case s.breakFraction <= 0 || s.stopFraction <= 0 || s.breakFraction+s.stopFraction > 0.5:
		return s, errors.New("-break-fraction and -stop-fraction must be positive and together at most 0.5")
	case s.maxConcurrent < 0:
		return s, errors.New("-max-concurrent-reconciles must not be negative")
	}
	if s.seed == 0 {
		s.seed = uint64(time.Now().UnixNano())
	}
	return s, nil
}

// run parses the flags, prepares the binary and PostgreSQL, measures every
// N and prints the table.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	progress := newProgress(stderr)

	dir, err := os.MkdirTemp("", "flightdeck-bench-")
	if err != nil {
		return fmt.Errorf("creating run directory: %w", err)
	}
	ok := false
	defer func() {
		if ok && !s.keepLogs {
			_ = os.RemoveAll(dir)
			return
		}
		fmt.Fprintf(stderr, "bench: logs kept in %s\n", dir)
	}()

	if s.flightdeck == "" || s.cpuProfile != "" || s.overlay != "" {
		bin := filepath.Join(dir, "flightdeck")
		progress.printf("building flightdeck (go build, no -race%s%s)",
			map[bool]string{true: ", with the CPU profiling hook", false: ""}[s.cpuProfile != ""],
			map[bool]string{true: ", overlay " + s.overlay, false: ""}[s.overlay != ""])
		if err := buildFlightdeck(ctx, bin, dir, s.cpuProfile != "", s.overlay); err != nil {
			return err
		}
		s.flightdeck = bin
	} else if abs, err := filepath.Abs(s.flightdeck); err == nil {
		s.flightdeck = abs
	}
	if _, err := os.Stat(s.flightdeck); err != nil {
		return fmt.Errorf("flightdeck binary: %w", err)
	}

	machine := describeMachine()
	progress.printf("starting PostgreSQL")
	pg, err := envtest.StartPostgres(ctx)
	if err != nil {
		return fmt.Errorf("starting PostgreSQL: %w", err)
	}
	defer func() {
		if err := pg.Stop(); err != nil {
			fmt.Fprintf(stderr, "bench: stopping PostgreSQL: %v\n", err)
		}
	}()

	results := make([]*result, 0, len(s.sizes))
	for i, n := range s.sizes {
		profile := ""
		if s.cpuProfile != "" && i == len(s.sizes)-1 {
			profile = s.cpuProfile
		}
		r, err := measure(ctx, s, pg, n, filepath.Join(dir, fmt.Sprintf("n%d", n)), profile, progress)
		if err != nil {
			return fmt.Errorf("measuring at %d deployments: %w", n, err)
		}
		results = append(results, r)
	}
	fmt.Fprintln(stdout)
	printReport(stdout, s, machine, results, os.Args)
	ok = true
	return nil
}

// buildFlightdeck builds ./cmd/flightdeck (from the module root, the working
// directory of `make bench` and `go run ./hack/bench`) into bin, with the
// user's overlay file if any. With profiling, the overlay also adds the
// profiling hook (profileHook) to package main, at build time only.
func buildFlightdeck(ctx context.Context, bin, dir string, profiling bool, userOverlay string) error {
	args := []string{"build", "-o", bin}
	if profiling || userOverlay != "" {
		overlay, err := writeOverlay(dir, profiling, userOverlay)
		if err != nil {
			return err
		}
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "./cmd/flightdeck")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building flightdeck (run from the module root): %w", err)
	}
	return nil
}

// progress prints timestamped progress lines to stderr.
type progress struct {
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) printf(format string, args ...any) {
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "bench [%6.1fs] %s\n", el, fmt.Sprintf(format, args...))
}

// round keeps 3 significant decimals for printing.
func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
