package flyclient_test

import (
	"encoding/json"
	"testing"

	"github.com/flightdeck/flightdeck/flyclient"
)

// FuzzDecodeMachine: decoding any bytes as a machine never panics, and what
// decodes encodes again and decodes a second time (an update sends the
// config back).
func FuzzDecodeMachine(f *testing.F) {
	for _, seed := range []string{
		exampleMachine, exampleServices, machineJSON(machineA, "started"),
		`{}`, `null`, `{"config":null}`, `{"config":{"services":[{"autostop":"suspend"}]}}`,
		`{"events":[{"timestamp":"2026-08-16T02:21:28.614Z","request":{"MonitorEvent":{"exit_event":{"exited_at":1}}}}]}`,
		`{"created_at":1699408350300,"checks":[{"updated_at":""}]}`,
		`{"config":{"checks":{"a":{"interval":{"time.Duration":5}}}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := flyclient.DecodeMachine(data)
		if err != nil {
			return
		}
		_ = m.LatestEvent("")
		_, _, _ = m.LatestExit()
		_ = m.LatestStartAt()
		_ = m.RestartCount()
		_ = m.DeploymentID()
		_ = flyclient.IsTransientState(m.State)
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("decoded machine does not encode: %v", err)
		}
		if _, err := flyclient.DecodeMachine(out); err != nil {
			t.Fatalf("re-encoded machine does not decode: %v\n%s", err, out)
		}
	})
}

// FuzzDecodeEvents: decoding any bytes as an event list never panics, and
// what decodes encodes and decodes again.
func FuzzDecodeEvents(f *testing.F) {
	for _, seed := range []string{
		exampleExitEvents, exampleCrashEvents, `[]`, `null`,
		`[{"type":"exit","request":{"exit_event":{"exited_at":"2026-08-16T02:21:28Z"}}}]`,
		`[{"type":"exit","request":{"MonitorEvent":{"exit_event":{"exit_code":1,"exited_at":1786846699000}},"restart_count":2}}]`,
		`[{"timestamp":1.5e12},{"timestamp":"1699408350300"}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := flyclient.DecodeEvents(data)
		if err != nil {
			return
		}
		m := &flyclient.Machine{Events: events}
		_, _, _ = m.LatestExit()
		_ = m.LatestStartAt()
		for i := range events {
			_ = events[i].Time()
			_ = events[i].Request.Exit().Crashed()
		}
		out, err := json.Marshal(events)
		if err != nil {
			t.Fatalf("decoded events do not encode: %v", err)
		}
		if _, err := flyclient.DecodeEvents(out); err != nil {
			t.Fatalf("re-encoded events do not decode: %v\n%s", err, out)
		}
	})
}
