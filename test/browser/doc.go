// Package browser holds flightdeck's end-to-end browser suite: a person's
// view of a deployment, from the moment the platform inserts its row to the
// moment Fly autostops its machine.
//
// The suite runs, in the test process, exactly what `flightdeck run` runs
// (controllers.Setup: the controller, the JSON API, the event stream and the
// dashboard on one HTTP server) against a real, migrated PostgreSQL
// (internal/envtest) and the Fly simulator, and drives the dashboard in a
// real headless Chromium (web/webtest). It inserts a deployment with plain
// SQL, as the platform's API does, reads the row's badge, progress bar and
// message as the page shows them, and asserts the whole sequence the browser
// saw: installing, starting, running, then a grey stopped badge once the
// simulated Fly proxy autostops the machine, never unhealthy.
//
// Timings are stretched just enough for a browser polling the page to see
// every stage for a second or more: the simulator answers the machine create
// after 1.5s (a real Fly create takes seconds, the simulator's milliseconds),
// boots for 1s and "installs" for 2s.
//
// Run it alone with
//
//	go test -race -count=1 -v ./test/browser/
//
// It needs Chromium (Debian's chromium, or $CHROMIUM) and PostgreSQL's
// binaries, which hack/install-prereqs.sh installs. Screenshots of the
// dashboard at each stage go to $FLIGHTDECK_OUTPUT_DIR/browser (default
// _output/browser under the module root, which git ignores).
package browser
