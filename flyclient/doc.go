// Package flyclient is flightdeck's client for the Fly Machines REST API
// (https://api.machines.dev/v1): typed requests and responses, one error type,
// safe retries, and a client-side rate limiter. It follows
// shared/fly-machines-api.md (the "reference"); section numbers below point
// into it.
//
// # Calls
//
// CreateMachine, GetMachine, ListMachines, UpdateMachine, StartMachine,
// StopMachine, DestroyMachine, ListEvents and WaitMachine map one to one onto
// the endpoints of reference §2. EnsureMachine is the idempotent create the
// controller uses: the machine name and config.metadata.deployment_id derive
// from the deployment id, so a create that meets "name taken", or whose answer
// was lost (timeout, 408, connection dropped after sending), finds and returns
// the machine that exists instead of making a second one.
//
// # Errors
//
// Every non-2xx answer becomes an *APIError carrying the HTTP status, Fly's
// message, Fly's "status" code string (insufficient_capacity, name_taken, ...)
// and the fly-request-id. errors.Is matches it against the sentinels
// ErrNotFound, ErrUnauthorized, ErrRateLimited, ErrConflict, ErrCapacity,
// ErrTimeout, ErrPrecondition, ErrNameTaken and ErrBadRequest. IsTransient
// and IsPermanent classify any error returned by this package for callers
// that choose between a retry and giving up. The token never appears in an
// error, a log line or the %v, %+v, %#v of a Token, Options or Client.
//
// # Retries
//
// Retries use exponential backoff with jitter and only where they cannot do
// harm: GETs (get, list, events, wait) are retried on 429, 502, 503, 504 and
// on transport failures (connection refused or reset, a body cut short).
// Requests that change something (POST, DELETE) are retried only when the
// server cannot have acted on them: on 429 and when the connection could not
// be made. A create is repeated only by EnsureMachine, after it has checked
// that no machine exists. A Retry-After header (seconds or HTTP date) is
// honoured; when it reaches beyond the context's deadline or MaxRetryWait the
// client gives up at once and the *APIError carries RetryAfter so the caller
// can requeue. Every retry is bounded by the context and MaxRetries.
//
// # Rate limits
//
// Fly limits each action per identifier (reference §5): Get Machine 5 req/s,
// burst 10, per machine; every other action 1 req/s, burst 3, per machine,
// or per app for create and list. The client keeps one token bucket per
// (action, identifier) and waits for it before sending; buckets idle long
// enough to have refilled are evicted, so thousands of machines cost no
// lasting memory. Waiting on /wait counts as the "wait" action of its machine.
//
// # Response size caps
//
// Bodies are read through a cap and the call fails with ErrUnexpectedResponse
// when a body is larger; nothing larger than the cap is held in memory:
//
//	machine (get, create, update)   1 MiB   a machine with 20 events and checks is ~10 KiB
//	events                          1 MiB   at most 50 events
//	list                          128 MiB   10,000 full machines ~100 MiB; use Summary for less
//	wait, start, stop, destroy     64 KiB   small JSON acknowledgements
//	error bodies                   64 KiB   only the first 512 characters of a message are kept
//
// # Timeouts
//
// Each attempt has its own deadline (Options.RequestTimeout, 30s by default);
// /wait attempts get the wait's server-side timeout (at most 60s, reference
// §2.5) plus RequestTimeout. Options.HTTPClient must therefore not set a
// Timeout shorter than 60s.
package flyclient
