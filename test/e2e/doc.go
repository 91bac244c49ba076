// Package e2e holds flightdeck's end-to-end scenario suite: the platform's
// test plan, automated against the built binaries.
//
// The suite builds cmd/flightdeck once, starts a throwaway PostgreSQL
// (internal/envtest) with an empty database, and runs `flightdeck sim` and
// `flightdeck run` as separate processes with short timings, as an operator
// would. It then inserts deployments with plain SQL, as the platform's API
// does, and asserts the whole status sequence each one goes through: the
// transition history in deployment_events, cross-checked against the
// statuses read on every flightdeck_status notification.
//
// Run it alone with
//
//	go test -race -v ./test/e2e/
//
// (`make test` runs it with every other suite). The processes' output goes
// to $FLIGHTDECK_OUTPUT_DIR/e2e (default _output/e2e under the module root),
// with a summary of the measured durations in summary.txt. When the suite is
// built with -race, so is the flightdeck binary it runs, and a data race in
// flightdeck fails the suite through its exit code.
package e2e
