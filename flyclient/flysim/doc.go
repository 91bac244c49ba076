// Package flysim simulates the Fly Machines REST API for one app, on
// loopback, so that flyclient, the controller, the demo and the benchmark run
// without Fly. It follows the project's Fly Machines API reference
// (fly-machines-api.md): paths, JSON field names, states, events and error
// bodies. It has its own wire types and never
// imports flyclient, so the two test each other.
//
// Each simulated machine gets its own private IP in 127.0.0.0/8 (Linux routes
// all of it to lo) and, while its server runs, a real HTTP /status endpoint on
// private_ip:StatusPort. A probe built from
// PROBE_URL_TEMPLATE=http://{private_ip}:<status port>/status reaches it, and a
// machine whose server is not running refuses the connection.
//
// # API (under /v1, token required)
//
//	GET    /v1/apps/{app}                          app info
//	GET    /v1/apps/{app}/machines                 list: include_deleted, region, state (comma list, repeatable),
//	                                               summary, metadata.{key}=value; creation order
//	POST   /v1/apps/{app}/machines                 create: name, region, config, skip_launch, lease_ttl
//	GET    /v1/apps/{app}/machines/{id}            get
//	POST   /v1/apps/{app}/machines/{id}            update: whole config, current_version, skip_launch
//	DELETE /v1/apps/{app}/machines/{id}            destroy: ?force=true or ?kill=true
//	POST   .../{id}/start | stop | suspend | restart | cordon | uncordon
//	GET    .../{id}/wait                           state=started|stopped|suspended|destroyed|settled, timeout=1..60
//	GET    .../{id}/events                         limit (default 20, at most 50), newest first
//	POST | GET | DELETE .../{id}/lease             optional leases (fly-machine-lease-nonce header)
//	GET .../{id}/metadata, POST | DELETE .../{id}/metadata/{key}
//
// Authorization is "Bearer <token>" or "FlyV1 <token>"; anything else is 401
// {"error":"invalid token"}. Another app name is 404 {"error":"app not found"},
// an unknown machine 404 {"error":"machine not found"}. Errors are
// {"error":"<gRPC-style prefix>: <message>"} with an optional "status":
// invalid_argument 400, aborted 409, failed_precondition 412,
// deadline_exceeded 408. Every answer carries a fly-request-id header.
//
// Machine JSON: id (14 lowercase hex), name (generated like
// "aged-thunder-7371" when not given; unique per app), state, region
// (default "ord"), instance_id (26-character ULID, new on every create and
// update, not on metadata changes), private_ip (127.N.x.y), image_ref,
// created_at/updated_at (RFC 3339), config (the request's config echoed,
// with services[].autostop "off"/"stop" written as false/true and Fly's
// default guest added when missing), events (the newest 20, newest first;
// timestamp in epoch milliseconds, id a ULID), checks, host_status "ok",
// cordoned, and nonce in a create answer that asked for lease_ttl.
//
// # States and events
//
//	create        created (launch/pending/flyd, launch/created/user)
//	                -> starting after BootDuration/2 -> started (start/started/flyd) after BootDuration/2
//	skip_launch   stays created until started
//	start         stopped|suspended|created -> starting (start/starting/user) -> started after BootDuration
//	stop          started|starting|suspended -> stopping (stop/stopping/user, request.reason "")
//	                -> stopped after StopDuration (exit/stopped/flyd, requested_stop true, exit_code 0)
//	suspend       started -> suspending (suspend/suspending/user) -> suspended (suspend/suspended/flyd)
//	restart       started -> restarting (restart/restarting/user) -> exit (requested_stop true, restarting true),
//	                restart/starting/flyd -> started after BootDuration
//	update        -> replacing (update/replacing/user) -> update/updated/flyd -> started again (start/started/flyd)
//	                if it was running (unless skip_launch); stays stopped (or created) if it was not
//	destroy       -> destroying (destroy/destroying/user) -> destroyed (destroy/destroyed/flyd), an exit event
//	                first if it was running; GET shows it for DestroyedVisibleFor, then 404
//
// A started machine runs its process: after InstallDuration ("npm install")
// its /status listener opens and answers per its package. Settled (for
// /wait?state=settled) means created (when not launching), started,
// stopped, suspended or destroyed.
//
// # Packages (config.env.MCP_PACKAGE, version suffix ignored)
//
//   - Any other package (or none): boots, installs, then /status answers 200
//     {"status":"ok"}.
//   - Missing packages: anything under "@invalid/", "@flightdeck-sim/missing"
//     and Options.MissingPackages. The install fails: the process exits with
//     code 1 (exit event requested_stop false) and the restart policy applies.
//   - "@flightdeck-sim/crash": serves 200, then exits 1 after CrashAfter; the
//     restart policy applies.
//   - "@flightdeck-sim/http-500": /status answers 500.
//   - "@flightdeck-sim/hang": /status accepts connections and never answers.
//   - "@flightdeck-sim/oom": killed by the OOM killer when its install ends
//     (exit code 137, oom_killed true); the restart policy applies.
//
// Restart policy (config.restart): "on-failure" (the default) restarts a
// non-zero exit while fewer than max_retries (default 10) restarts happened
// within 5 minutes, then leaves the machine stopped; "always" restarts every
// exit; "no" never restarts. A restarted machine is starting for
// RestartDelay, then started, and installs again. Exit events carry
// request.exit_event {requested_stop, restarting, exit_code, oom_killed,
// exited_at, ...} and request.restart_count, the number of restarts since the
// machine was last started by a user or the proxy (0 on the first exit), so
// a missing package with the defaults shows 11 exits with restart_count 0..10
// and ends stopped with restarting false. A machine with auto_destroy that
// exits for good is destroyed.
//
// # Control endpoints (under /_sim/, token required, never faulted or counted)
//
//	GET    /_sim/info                       app, region, API URL, status port, address block
//	POST   /_sim/machines/{id}/autostop     {"mode":"stop"|"suspend"}: as the Fly proxy (source "proxy")
//	POST   /_sim/machines/{id}/autostart    start/starting/proxy, boots (or resumes) again
//	POST   /_sim/machines/{id}/status       {"mode":"normal"|"code"|"hang"|"drop","code":503}
//	POST   /_sim/machines/{id}/crash        {"exit_code":1} or {"oom":true}
//	GET | PUT /_sim/faults                  Faults (durations as Go strings)
//	GET | DELETE /_sim/stats                request counts by method, route pattern and status; reset
//	POST   /_sim/seed                       SeedRequest: machines already started and listening
//
// Control is a Go client for them. A /status override lasts across restarts
// and updates until reset with mode "normal". Drop accepts the connection and
// closes it without an answer; hang holds it until the client gives up or
// the server goes down.
//
// Faults apply to /v1 only, in this order: Latency, then a 429
// {"error":"rate limit exceeded"} with probability Rate429 and a
// "Retry-After: <seconds>" header (RetryAfter rounded up to whole seconds,
// default 1; NoRetryAfter omits it), then Status5xx (default 503)
// {"error":"unavailable: simulated server error"} with probability Rate5xx.
// DropCreateResponses=N makes the next N creates create their machine and
// then close the connection without an answer (counted with status 0).
//
// # Choices where the reference says UNVERIFIED
//
//   - Name taken: 422 {"error":"already_exists: ...","status":"name_taken"};
//     a destroyed machine's name is free again.
//   - Destroying a running machine (anything but created, stopped or
//     suspended) without force/kill: 412 failed_precondition. Destroying a
//     destroying or destroyed machine: 200.
//   - Starting a started machine: 412 "failed_precondition: machine still
//     active, refusing to start"; starting while replacing: 412 "machine
//     getting replaced, refusing to start". Stopping a stopped machine: 200,
//     nothing happens. Suspend from anything but started: 412.
//   - Autostop events: stop/stopping/proxy (suspend/suspending/proxy in
//     suspend mode), then the same exit (requested_stop true) as a user stop.
//     Suspend event statuses: suspend/suspending, suspend/suspended.
//   - Update: current_version mismatch is 409 aborted; a concurrent update
//     409 "aborted: machine is replacing: concurrent update in progress";
//     name and region cannot change (400). The old process stops without an
//     exit event.
//   - /wait: several states (repeated or comma-separated) mean any of them;
//     the 408 message joins them with "|"; instance_id, version and
//     from_event_id are accepted and ignored; waiting for destroyed answers
//     200 while the machine is visible and 404 after.
//   - Events: at most 50 kept per machine; larger limits are capped at 50.
//   - Checks: configured checks (top-level by name, service checks as
//     servicecheck-NN-<type>-<port>) are reported only while started,
//     passing or critical from the /status behaviour.
//   - Leases: optional; when held, writes without the nonce get 409
//     "aborted: machine ID ... lease currently held by ...".
//   - Region "xxx" is out of capacity: 503 {"error":"out of capacity",
//     "status":"insufficient_capacity"}.
//   - Resuming a suspended machine does not install again: its server
//     listens as soon as it is started.
//
// Not simulated: exec, ps, signal, versions, volumes, app CRUD, the 404 right
// after a create, rate limits other than injected faults, host_status other
// than "ok", the "failed" state.
//
// # Addresses, ports and file descriptors
//
// A simulator takes one 127.N.0.0/16 block (N random in 1..254, never
// 127.0.x.x) unless Options.IPBase names the first address. It claims the
// block against simulators of other processes with a marker listener on
// 127.N.255.254:42427, and before handing out an address it checks that
// nothing listens on address:StatusPort; should a machine's address be taken
// anyway when its server starts, the machine moves to a fresh address (on Fly
// a machine's 6PN address can change on reboot too) and GET shows the new
// private_ip. StatusPort 0 picks one free port for all the machines of a
// simulator; `flightdeck sim` uses 8080.
//
// All machines share one http.Server; each running machine has its own
// listener (one file descriptor and one goroutine in Accept) and the handler
// finds the machine through the connection. Idle keep-alive connections are
// closed after 5s (Node's default). 10,000 machines therefore need more than
// 10,000 file descriptors: `flightdeck sim` raises the soft RLIMIT_NOFILE to
// the hard limit (RaiseOpenFileLimit) and prints it. Measured on a 2-core
// machine (scale_test.go, FLYSIM_SCALE=10000): seeding 10,000 machines takes
// about 0.7s (1s of CPU), probing every /status once with 64 workers about
// 1.2s, and the process then holds about 225 MB RSS and 10,000 goroutines.
//
// Close stops every machine, cancels every pending transition, closes every
// listener and connection and waits for the serving goroutines.
package flysim
