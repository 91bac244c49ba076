package flyclient_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient"
)

var _ = Describe("Decoding Fly's JSON", func() {
	It("decodes the reference's machine example", func() {
		m, err := flyclient.DecodeMachine([]byte(exampleMachine))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.ID).To(Equal("1857156b526dd8"))
		Expect(m.Name).To(Equal("aged-thunder-7371"))
		Expect(m.State).To(Equal(flyclient.StateCreated))
		Expect(m.Region).To(Equal("ord"))
		Expect(m.InstanceID).To(Equal("01HEPA330HZ37A78TK080NAK1M"))
		Expect(m.PrivateIP).To(Equal("fdaa:ff:ff:a7b:195:e229:8038:2"))
		Expect(m.CreatedAt).To(Equal(time.Date(2023, 11, 8, 1, 52, 30, 0, time.UTC)))
		Expect(m.HostStatus).To(Equal("ok"))
		Expect(m.Nonce).To(Equal("5c35f65c9f95"))
		Expect(m.Config.Guest).To(Equal(&flyclient.GuestConfig{CPUKind: "shared", CPUs: 1, MemoryMB: 256}))
		Expect(m.Config.Restart.Policy).To(Equal(flyclient.RestartAlways))
		Expect(m.Config.AutoDestroy).To(BeTrue())
		Expect(m.Checks).To(HaveLen(1))
		Expect(m.Checks[0].Status).To(Equal(flyclient.CheckPassing))
		Expect(m.Checks[0].UpdatedAt).To(Equal(time.Date(2023, 10, 12, 21, 23, 26, 14e6, time.UTC)))
		Expect(m.LatestEvent(flyclient.EventLaunch).Time()).To(Equal(time.UnixMilli(1699408350300).UTC()))
	})

	It("reads autostop as a bool or a string and writes it back the way Fly answers", func() {
		m, err := flyclient.DecodeMachine([]byte(exampleServices))
		Expect(err).NotTo(HaveOccurred())
		svcs := m.Config.Services
		Expect(svcs).To(HaveLen(3))
		Expect(*svcs[0].Autostop).To(Equal(flyclient.AutostopSuspend))
		Expect(*svcs[1].Autostop).To(Equal(flyclient.AutostopOff))
		Expect(*svcs[2].Autostop).To(Equal(flyclient.AutostopStop))
		Expect(*svcs[0].Autostart).To(BeTrue())
		Expect(*svcs[0].Ports[0].Port).To(Equal(80))
		b, err := json.Marshal(svcs)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(ContainSubstring(`"autostop":"suspend"`))
		Expect(string(b)).To(ContainSubstring(`"autostop":false`))
		Expect(string(b)).To(ContainSubstring(`"autostop":true`))
		var bad flyclient.Autostop
		Expect(json.Unmarshal([]byte(`42`), &bad)).To(HaveOccurred())
	})

	It("reads check durations as strings, nanoseconds or the spec's object", func() {
		m, err := flyclient.DecodeMachine([]byte(exampleServices))
		Expect(err).NotTo(HaveOccurred())
		chk := m.Config.Services[0].Checks[0]
		Expect(chk.Interval.Duration).To(Equal(15 * time.Second))
		Expect(chk.Timeout.Duration).To(Equal(2 * time.Second))
		Expect(chk.GracePeriod.Duration).To(Equal(5 * time.Second))
		Expect(m.Config.Checks["alive"].Kind).To(Equal("readiness"))
		Expect(m.Config.StopConfig.Timeout.Duration).To(Equal(10 * time.Second))
		b, err := json.Marshal(chk)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(ContainSubstring(`"timeout":"2s"`))
	})

	It("keeps config fields it does not model through an update round trip", func() {
		m, err := flyclient.DecodeMachine([]byte(exampleServices))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Config.Unknown).To(HaveKey("mounts"))
		Expect(m.Config.Unknown).To(HaveKey("init"))
		m.Config.Image = "runner:2"
		b, err := json.Marshal(m.Config)
		Expect(err).NotTo(HaveOccurred())
		var back map[string]any
		Expect(json.Unmarshal(b, &back)).To(Succeed())
		Expect(back["image"]).To(Equal("runner:2"))
		Expect(back["mounts"]).To(Equal([]any{map[string]any{"volume": "vol_123", "path": "/data"}}))
		Expect(back["init"]).To(Equal(map[string]any{"cmd": []any{"npx", "-y", "left-pad"}}))
		Expect(back["metadata"]).To(HaveKeyWithValue("deployment_id", "d-1"))
	})

	It("lets a modelled field win over an Unknown entry of the same name", func() {
		cfg := flyclient.MachineConfig{Image: "a", Unknown: map[string]json.RawMessage{"image": json.RawMessage(`"b"`), "dns": json.RawMessage(`{}`)}}
		b, err := json.Marshal(cfg)
		Expect(err).NotTo(HaveOccurred())
		Expect(b).To(MatchJSON(`{"image":"a","dns":{}}`))
	})

	It("hides env values when a config is printed", func() {
		m, err := flyclient.DecodeMachine([]byte(exampleServices))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Config.Env["API_KEY"]).To(Equal("hunter2"))
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			for _, v := range []any{*m, *m.Config, m.Config, m.Config.Env} {
				Expect(fmt.Sprintf(verb, v)).NotTo(ContainSubstring("hunter2"), verb)
			}
		}
		Expect(fmt.Sprintf("%v", m.Config.Env)).To(Equal("map[API_KEY:[redacted] MCP_PACKAGE:[redacted]]"))
	})

	Describe("events", func() {
		var m *flyclient.Machine
		BeforeEach(func() {
			events, err := flyclient.DecodeEvents([]byte(exampleExitEvents))
			Expect(err).NotTo(HaveOccurred())
			m = &flyclient.Machine{Events: events}
		})

		It("finds the newest exit and its time from exited_at", func() {
			exit, at, ok := m.LatestExit()
			Expect(ok).To(BeTrue())
			Expect(exit.RequestedStop).To(BeTrue())
			Expect(exit.ExitCode).To(Equal(0))
			Expect(exit.Signal).To(Equal(-1))
			Expect(exit.Crashed()).To(BeFalse())
			Expect(at).To(Equal(time.Date(2026, 8, 16, 2, 21, 28, 614e6, time.UTC)))
		})

		It("folds the old MonitorEvent nesting and epoch-ms exited_at into ExitEvent", func() {
			old := m.Events[3]
			Expect(old.Request.ExitEvent).NotTo(BeNil())
			Expect(old.Request.ExitEvent.ExitCode).To(Equal(137))
			Expect(old.Request.ExitEvent.OOMKilled).To(BeTrue())
			Expect(old.Request.ExitEvent.Crashed()).To(BeTrue())
			Expect(old.Request.ExitEvent.ExitedAt).To(Equal(time.UnixMilli(1786846699000).UTC()))
			Expect(old.Request.RestartCount).To(Equal(2))
		})

		It("finds the latest start and latest event by timestamp, not by position", func() {
			Expect(m.LatestStartAt()).To(Equal(time.UnixMilli(1786846800000).UTC()))
			Expect(m.LatestEvent("").Type).To(Equal(flyclient.EventExit))
			Expect(m.LatestEvent(flyclient.EventStop).Source).To(Equal("user"))
			Expect(m.LatestEvent(flyclient.EventDestroy)).To(BeNil())
			// Oldest first must give the same answers.
			rev := make([]flyclient.MachineEvent, len(m.Events))
			for i, e := range m.Events {
				rev[len(rev)-1-i] = e
			}
			r := &flyclient.Machine{Events: rev}
			Expect(r.LatestStartAt()).To(Equal(m.LatestStartAt()))
			exit, _, _ := r.LatestExit()
			Expect(exit.RequestedStop).To(BeTrue())
		})

		It("shows a crash loop's restart count and exit code", func() {
			events, err := flyclient.DecodeEvents([]byte(exampleCrashEvents))
			Expect(err).NotTo(HaveOccurred())
			cm := &flyclient.Machine{Events: events}
			exit, _, ok := cm.LatestExit()
			Expect(ok).To(BeTrue())
			Expect(exit.Crashed()).To(BeTrue())
			Expect(exit.Restarting).To(BeTrue())
			Expect(cm.RestartCount()).To(Equal(3))
			Expect(cm.LatestStartAt().IsZero()).To(BeTrue(), "a start still starting is not a finished boot")
		})

		It("answers empty-handed for a machine without events", func() {
			var nilMachine *flyclient.Machine
			_, _, ok := nilMachine.LatestExit()
			Expect(ok).To(BeFalse())
			Expect((&flyclient.Machine{}).LatestStartAt().IsZero()).To(BeTrue())
			Expect(nilMachine.DeploymentID()).To(BeEmpty())
		})

		DescribeTable("accepts the timestamp forms Fly has used",
			func(raw string, want time.Time) {
				events, err := flyclient.DecodeEvents([]byte(`[{"type":"start","status":"started","timestamp":` + raw + `}]`))
				Expect(err).NotTo(HaveOccurred())
				Expect(events[0].Time()).To(Equal(want))
			},
			Entry("integer epoch ms", `1699408350300`, time.UnixMilli(1699408350300).UTC()),
			Entry("float epoch ms", `1699408350300.0`, time.UnixMilli(1699408350300).UTC()),
			Entry("numeric string", `"1699408350300"`, time.UnixMilli(1699408350300).UTC()),
			Entry("RFC 3339 string", `"2023-11-08T01:52:30.3Z"`, time.Date(2023, 11, 8, 1, 52, 30, 3e8, time.UTC)),
			Entry("null", `null`, time.Time{}),
		)

		It("rejects timestamps it cannot read instead of guessing", func() {
			for _, raw := range []string{`"yesterday"`, `1e300`, `true`, `"99999-01-01T00:00:00Z"`} {
				_, err := flyclient.DecodeEvents([]byte(`[{"type":"start","timestamp":` + raw + `}]`))
				Expect(err).To(HaveOccurred(), raw)
			}
		})
	})

	It("accepts empty and epoch-ms machine timestamps", func() {
		m, err := flyclient.DecodeMachine([]byte(`{"id":"1857156b526dd8","created_at":"","updated_at":1699408350300}`))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.CreatedAt.IsZero()).To(BeTrue())
		Expect(m.UpdatedAt).To(Equal(time.UnixMilli(1699408350300).UTC()))
	})

	It("says which states are transient", func() {
		for _, s := range []string{"creating", "starting", "stopping", "restarting", "suspending", "destroying", "launch_failed", "updating", "replacing"} {
			Expect(flyclient.IsTransientState(s)).To(BeTrue(), s)
		}
		for _, s := range []string{"created", "started", "stopped", "suspended", "failed", "destroyed", "replaced", "migrated", "", "unknown"} {
			Expect(flyclient.IsTransientState(s)).To(BeFalse(), s)
		}
	})
})

var _ = Describe("Machine names and ids", func() {
	label := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

	It("names a UUID deployment fd-<uuid>", func() {
		Expect(flyclient.MachineNameFor("6f1c9a52-1c1e-4e8a-9d57-2f0e4c1d7a10")).To(Equal("fd-6f1c9a52-1c1e-4e8a-9d57-2f0e4c1d7a10"))
	})

	It("derives valid, deterministic and distinct names from any id", func() {
		ids := []string{
			"6f1c9a52-1c1e-4e8a-9d57-2f0e4c1d7a10", "6F1C9A52-1C1E-4E8A-9D57-2F0E4C1D7A10", "abc", "ABC", "a--b", "-a", "a-",
			"", "  ", "été", "a_b", "a.b", "a b", strings.Repeat("x", 200), strings.Repeat("x", 201), "../../etc", "fdx-abc",
		}
		seen := map[string]string{}
		for _, id := range ids {
			name := flyclient.MachineNameFor(id)
			Expect(name).To(MatchRegexp(label.String()), "id %q", id)
			Expect(flyclient.MachineNameFor(id)).To(Equal(name))
			prev, dup := seen[name]
			Expect(dup).To(BeFalse(), "ids %q and %q share the name %s", prev, id, name)
			seen[name] = id
		}
	})

	It("accepts only 14 lowercase hex characters as a machine id", func() {
		Expect(flyclient.ValidMachineID("1857156b526dd8")).To(BeTrue())
		for _, id := range []string{"", "1857156b526dd", "1857156b526dd80", "1857156B526DD8", "1857156b526ddg", "a5c5de9ce64ca12", "../1857156b52"} {
			Expect(flyclient.ValidMachineID(id)).To(BeFalse(), id)
		}
	})
})
