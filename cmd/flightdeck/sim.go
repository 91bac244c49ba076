package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

func init() {
	commands["sim"] = command{
		summary: "run a local Fly Machines API simulator (loopback only)",
		run:     runSim,
	}
}

// runSim starts a simulator, prints the settings that point flightdeck (or
// curl) at it, and serves until ctx is cancelled.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts      flysim.Options
		ipBase    string
		faults    flysim.Faults
		verbosity int
	)
	fs.StringVar(&opts.Addr, "addr", "127.0.0.1:4280", "API listen address (loopback only)")
	fs.StringVar(&opts.Token, "token", "sim-token", "API token accepted as \"Bearer <token>\" or \"FlyV1 <token>\" (a development token: the simulator only listens on loopback)")
	fs.StringVar(&opts.App, "app", "flightdeck-sim", "the app name the simulator hosts")
	fs.StringVar(&opts.Region, "region", "ord", "region of machines created without one")
	fs.IntVar(&opts.StatusPort, "status-port", 8080, "port of each machine's /status on its private IP (0 picks a free one)")
	fs.StringVar(&ipBase, "ip-base", "", "first private IP to hand out, in 127.0.0.0/8 (default: a random 127.N.0.0/16 block)")
	fs.DurationVar(&opts.BootDuration, "boot", time.Second, "created/starting -> started")
	fs.DurationVar(&opts.InstallDuration, "install", 3*time.Second, "started -> /status answers (npm install)")
	fs.DurationVar(&opts.StopDuration, "stop", 500*time.Millisecond, "stopping/suspending/restarting/destroying duration")
	fs.DurationVar(&opts.CrashAfter, "crash-after", 15*time.Second, "how long @flightdeck-sim/crash serves before exiting 1")
	fs.DurationVar(&opts.RestartDelay, "restart-delay", time.Second, "starting time of a restart after an exit")
	fs.DurationVar(&opts.DestroyedVisibleFor, "destroyed-visible", 30*time.Second, "how long destroyed machines stay readable before 404")
	fs.DurationVar(&opts.AutostopIdle, "autostop-idle", 0, "stop machines whose services set autostop this long after they start (0: off)")
	fs.DurationVar(&faults.Latency, "api-latency", 0, "latency added to every API request")
	fs.Float64Var(&faults.Rate429, "fault-429-rate", 0, "fraction of API requests answered 429 (Retry-After: 1)")
	fs.Float64Var(&faults.Rate5xx, "fault-5xx-rate", 0, "fraction of API requests answered 503")
	fs.IntVar(&verbosity, "v", 0, "log verbosity (1 logs every machine state change)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if ipBase != "" {
		addr, err := netip.ParseAddr(ipBase)
		if err != nil {
			return fmt.Errorf("--ip-base: %w", err)
		}
		opts.IPBase = addr
	}
	if faults.Rate429 < 0 || faults.Rate429 > 1 || faults.Rate5xx < 0 || faults.Rate5xx > 1 {
		return fmt.Errorf("--fault-429-rate and --fault-5xx-rate must be between 0 and 1")
	}
	opts.Logger = funcr.New(func(prefix, args string) {
		fmt.Fprintln(stderr, "flightdeck sim:", prefix, args)
	}, funcr.Options{Verbosity: verbosity})

	soft, _, err := flysim.RaiseOpenFileLimit()
	if err != nil {
		fmt.Fprintf(stderr, "flightdeck sim: warning: %v\n", err)
	}
	sim, err := flysim.Start(opts)
	if err != nil {
		return err
	}
	sim.SetFaults(faults)
	fmt.Fprintf(stdout, "flightdeck sim: Fly Machines API simulator for app %q (open file limit %d: one per listening machine, one per open connection)\n",
		sim.App(), soft)
	fmt.Fprintf(stdout, "FLY_API_BASE_URL=%s\n", sim.URL())
	fmt.Fprintf(stdout, "FLY_API_TOKEN=%s\n", sim.Token())
	fmt.Fprintf(stdout, "FLY_APP_NAME=%s\n", sim.App())
	fmt.Fprintf(stdout, "PROBE_URL_TEMPLATE=http://{private_ip}:%d/status\n", sim.StatusPort())
	<-ctx.Done()
	fmt.Fprintln(stdout, "flightdeck sim: shutting down")
	return sim.Close()
}
