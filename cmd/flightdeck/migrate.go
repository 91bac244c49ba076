package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/flightdeck/flightdeck/store"
)

func init() {
	commands["migrate"] = command{
		summary: "apply the database migrations (safe to run concurrently and repeatedly)",
		run:     runMigrate,
	}
}

// runMigrate applies the embedded migrations to DATABASE_URL (or
// --database-url, which wins) and prints each migration it applied.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// No default from the environment: -h would print it, password and all.
	databaseURL := fs.String("database-url", "", "PostgreSQL URL (default: the DATABASE_URL environment variable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flightdeck migrate [--database-url URL]")
		fmt.Fprintln(stderr, "\nApplies the pending schema migrations, including the upgrade of a legacy deployments table.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *databaseURL == "" {
		*databaseURL = os.Getenv("DATABASE_URL")
	}
	if *databaseURL == "" {
		return errors.New("DATABASE_URL: not set (set the variable or pass --database-url)")
	}
	applied, err := store.Migrate(ctx, *databaseURL)
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s (%s)\n", m.Name, m.Duration.Round(time.Millisecond))
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema is up to date; nothing to apply")
	}
	return nil
}
