package main

import (
	"context"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const exposition = `# HELP flightdeck_probe_duration_seconds Duration of /status probes by result.
# TYPE flightdeck_probe_duration_seconds histogram
flightdeck_probe_duration_seconds_bucket{result="ok",le="0.001"} 90
flightdeck_probe_duration_seconds_bucket{result="ok",le="0.01"} 99
flightdeck_probe_duration_seconds_bucket{result="ok",le="+Inf"} 100
flightdeck_probe_duration_seconds_count{result="ok"} 100
flightdeck_probe_duration_seconds_bucket{result="http_status",le="0.001"} 0
flightdeck_probe_duration_seconds_bucket{result="http_status",le="0.01"} 4
flightdeck_probe_duration_seconds_bucket{result="http_status",le="+Inf"} 5
flightdeck_probe_duration_seconds_count{result="http_status"} 5
flightdeck_fly_api_requests_total{code="200",endpoint="get_machine"} 7
flightdeck_fly_api_requests_total{code="503",endpoint="get_machine"} 2
weird_label{msg="a \"quoted\", value}"} 1.5
plain_gauge 42
`

var _ = Describe("reading /metrics", func() {
	It("sums the series of a metric, optionally those with given labels", func() {
		m, err := parseMetrics(strings.NewReader(exposition))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.probeCount()).To(Equal(105.0))
		Expect(m.sum("flightdeck_probe_duration_seconds_count", map[string]string{"result": "ok"})).To(Equal(100.0))
		Expect(m.byLabel("flightdeck_fly_api_requests_total", "code")).To(Equal(map[string]float64{"200": 7, "503": 2}))
		Expect(m.sum("plain_gauge", nil)).To(Equal(42.0))
	})

	It("unescapes label values, commas and braces included", func() {
		m, err := parseMetrics(strings.NewReader(exposition))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.sum("weird_label", map[string]string{"msg": `a "quoted", value}`})).To(Equal(1.5))
	})

	It("refuses a line without a value", func() {
		_, err := parseMetrics(strings.NewReader("lonely_metric{a=\"b\"}\n"))
		Expect(err).To(MatchError(ContainSubstring("no value")))
	})

	It("finds the bucket holding a quantile of what a histogram gained between two scrapes", func() {
		before, err := parseMetrics(strings.NewReader(exposition))
		Expect(err).NotTo(HaveOccurred())
		after, err := parseMetrics(strings.NewReader(strings.NewReplacer(
			`result="ok",le="0.001"} 90`, `result="ok",le="0.001"} 100`,
			`result="ok",le="0.01"} 99`, `result="ok",le="0.01"} 199`,
			`result="ok",le="+Inf"} 100`, `result="ok",le="+Inf"} 200`,
		).Replace(exposition)))
		Expect(err).NotTo(HaveOccurred())
		// Gained: 10 below 1ms, 90 more below 10ms, 0 above.
		q, ok := histogramQuantile(before, after, "flightdeck_probe_duration_seconds", map[string]string{"result": "ok"}, 0.5)
		Expect(ok).To(BeTrue())
		Expect(q).To(Equal(0.01))
		q, ok = histogramQuantile(before, after, "flightdeck_probe_duration_seconds", map[string]string{"result": "ok"}, 0.05)
		Expect(ok).To(BeTrue())
		Expect(q).To(Equal(0.001))
		_, ok = histogramQuantile(before, before, "flightdeck_probe_duration_seconds", nil, 0.5)
		Expect(ok).To(BeFalse(), "nothing was observed")
	})
})

var _ = Describe("percentiles of detection latencies", func() {
	secs := func(v ...float64) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, s := range v {
			out[i] = time.Duration(s * float64(time.Second))
		}
		return out
	}

	It("takes the nearest rank", func() {
		d := secs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
		p50, _ := percentile(d, 0, 50)
		p99, _ := percentile(d, 0, 99)
		Expect(p50).To(Equal(5 * time.Second))
		Expect(p99).To(Equal(10 * time.Second))
	})

	It("counts an undetected break as slower than every detection", func() {
		d := secs(1, 2, 3, 4, 5, 6, 7, 8, 9)
		_, ok := percentile(d, 1, 99)
		Expect(ok).To(BeFalse())
		p50, ok := percentile(d, 1, 50)
		Expect(ok).To(BeTrue())
		Expect(p50).To(Equal(5 * time.Second))
	})
})

var _ = Describe("the report", func() {
	base := func(n int) *result {
		r := &result{n: n, broken: [numKinds]int{2, 2}}
		for k := range numKinds {
			r.latency[k] = []time.Duration{3 * time.Second, 4 * time.Second}
		}
		for _, p := range []*phase{&r.healthy, &r.breaking} {
			p.wall, p.cpu, p.probes = 10*time.Second, time.Second, 20000
		}
		r.peakRSS = 100_000_000
		return r
	}
	s := settings{checkInterval: 5 * time.Second, probeTimeout: 2 * time.Second, startupPollInterval: 2 * time.Second}
	verdict := func(rows []tableRow, metric string) string {
		for _, row := range rows {
			if row.metric == metric {
				return row.verdict
			}
		}
		Fail("no row " + metric)
		return ""
	}

	It("passes a run that meets every target", func() {
		rows := report(s, []*result{base(1000), base(10000)})
		for _, row := range rows {
			Expect(row.verdict).To(BeElementOf(pass, ""), row.metric)
		}
	})

	It("checks the latency, CPU and memory targets at the largest N only", func() {
		small, large := base(1000), base(10000)
		small.latency[kind500] = []time.Duration{3 * time.Second, 30 * time.Second}
		small.peakRSS = 500_000_000
		Expect(verdict(report(s, []*result{small, large}), "500 → unhealthy: detection p99")).To(Equal(pass))
		Expect(verdict(report(s, []*result{small, large}), "flightdeck peak RSS (VmHWM)")).To(Equal(pass))
		large.latency[kindStop] = []time.Duration{3 * time.Second, 10*time.Second + time.Millisecond}
		large.healthy.cpu = 3 * time.Second // 0.15 ms per probe
		rows := report(s, []*result{small, large})
		Expect(verdict(rows, "autostop → stopped: detection p99")).To(Equal(missed))
		Expect(verdict(rows, "flightdeck CPU per probe (healthy window)")).To(Equal(missed))
	})

	It("checks the zero targets at every N", func() {
		small, large := base(1000), base(10000)
		small.wrongUntouched = 1
		small.healthy.fly = map[string]int{"GET machines/{id}": 1}
		rows := report(s, []*result{small, large})
		Expect(verdict(rows, "wrong transitions of untouched deployments")).To(Equal(missed))
		Expect(verdict(rows, "Fly API calls per healthy probe")).To(Equal(missed))
		Expect(verdict(rows, "DB writes per healthy probe")).To(Equal(pass))
	})

	It("misses the detection target when a break went undetected", func() {
		large := base(10000)
		large.undetected[kind500] = 1
		rows := report(s, []*result{large})
		Expect(verdict(rows, "500 → unhealthy: detected")).To(Equal(missed))
		Expect(verdict(rows, "500 → unhealthy: detection p99")).To(Equal(missed))
	})

	It("prints thousands with separators", func() {
		Expect(thousands(10000)).To(Equal("10,000"))
		Expect(thousands(999)).To(Equal("999"))
		Expect(thousands(-1234567)).To(Equal("-1,234,567"))
	})
})

var _ = Describe("reading /proc", func() {
	It("reads this process's CPU time, peak RSS, open files and limit", func(ctx context.Context) {
		pid := os.Getpid()
		user, sys, err := processCPUSplit(pid)
		Expect(err).NotTo(HaveOccurred())
		Expect(user + sys).To(BeNumerically(">", 0))
		hwm, err := processStatusBytes(pid, "VmHWM")
		Expect(err).NotTo(HaveOccurred())
		Expect(hwm).To(BeNumerically(">", 1<<20))
		fds, err := openFDs(pid)
		Expect(err).NotTo(HaveOccurred())
		Expect(fds).To(BeNumerically(">=", 3))
		limit, err := openFileLimit(pid)
		Expect(err).NotTo(HaveOccurred())
		Expect(limit).To(BeNumerically(">=", fds))
		_, err = processStatusBytes(pid, "NoSuchField")
		Expect(err).To(HaveOccurred())
	})
})

var _ = Describe("flags", func() {
	It("refuses a probe timeout that flightdeck would refuse", func() {
		_, err := parseFlags([]string{"-check-interval", "2s", "-probe-timeout", "2s"}, GinkgoWriter)
		Expect(err).To(MatchError(ContainSubstring("-probe-timeout")))
	})

	It("defaults the windows from the check interval and sorts the sizes", func() {
		s, err := parseFlags([]string{"-n", "10000,1000", "-check-interval", "4s"}, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.sizes).To(Equal([]int{1000, 10000}))
		Expect(s.warmup).To(Equal(4 * time.Second))
		Expect(s.healthy).To(Equal(12 * time.Second))
		Expect(s.window).To(Equal(8 * time.Second))
		Expect(s.detectionTarget()).To(Equal(9 * time.Second))
	})

	It("names the simulator's endpoints briefly", func() {
		Expect(endpointName("GET", "/v1/apps/{app}/machines/{id}")).To(Equal("GET machines/{id}"))
		Expect(endpointName("GET", "/v1/apps/{app}")).To(Equal("GET app"))
	})
})
