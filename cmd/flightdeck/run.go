package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flightdeck/flightdeck/config"
	"github.com/flightdeck/flightdeck/controllers"
	"github.com/flightdeck/flightdeck/internal/version"
	"github.com/flightdeck/flightdeck/store"
)

func init() {
	commands["run"] = command{
		summary: "run the controller, the JSON API, the dashboard and /metrics",
		run:     runRun,
	}
}

// runRun wires configuration into a logger, a store, a Fly client, a
// prober, the reconciler, the controller and the HTTP server, then runs them
// until SIGINT/SIGTERM (exit 0) or until a part fails (exit 1).
func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flightdeck run [flags]\n\nEvery flag can also be set by its environment variable; flags win.")
		_ = config.Usage(stderr)
	}
	cfg, err := config.LoadWith(fs, args, os.Getenv, config.RequiredForRun()...)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	logf.SetLogger(log)
	klog.SetLogger(log.WithName("leaderelection"))
	ctx = logr.NewContext(ctx, log)
	log.Info("Starting flightdeck", "version", version.String(), "config", cfg)

	if cfg.Migrate {
		applied, err := store.Migrate(ctx, cfg.DatabaseURL.Value())
		if err != nil {
			return fmt.Errorf("applying migrations: %w", err)
		}
		for _, m := range applied {
			log.Info("Applied migration", "migration", m.Name, "duration", m.Duration.String())
		}
	}
	runner, err := controllers.Setup(ctx, cfg, controllers.SetupOptions{Log: log, RegisterMetrics: true})
	if err != nil {
		return err
	}
	defer runner.Close()
	fmt.Fprintf(stdout, "flightdeck %s: dashboard and API on http://%s/\n", version.String(), runner.Addr())
	return runner.Run(ctx)
}

// newLogger builds the zap-backed logr.Logger: JSON by default, console with
// LOG_FORMAT=console.
func newLogger(cfg config.Config, w io.Writer) (logr.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(cfg.LogLevel))); err != nil {
		return logr.Discard(), fmt.Errorf("LOG_LEVEL: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == config.LogFormatConsole {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(w), zap.NewAtomicLevelAt(level))
	return zapr.NewLogger(zap.New(core)), nil
}
