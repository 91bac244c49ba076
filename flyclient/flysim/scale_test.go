package flysim_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

// The scale measurement runs only when FLYSIM_SCALE names a machine count,
// e.g. FLYSIM_SCALE=10000 go test -v ./flyclient/flysim/
// -ginkgo.label-filter=scale (without -race for honest numbers).
var _ = Describe("Scale", Label("scale"), func() {
	It("seeds FLYSIM_SCALE machines and probes every /status once", func() {
		n, _ := strconv.Atoi(os.Getenv("FLYSIM_SCALE"))
		if n <= 0 {
			Skip("set FLYSIM_SCALE=<machines> to measure")
		}
		soft, _, err := flysim.RaiseOpenFileLimit()
		Expect(err).NotTo(HaveOccurred())
		e := startSim()
		ctx := context.Background()
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		goroutinesBefore := runtime.NumGoroutine()

		start, cpu := time.Now(), cpuTime()
		seeded, err := e.ctl.Seed(ctx, flysim.SeedRequest{Count: n, Package: "@modelcontextprotocol/server-everything",
			Metadata: map[string]string{"bench": "yes"}})
		Expect(err).NotTo(HaveOccurred())
		seedTime, seedCPU := time.Since(start), cpuTime()-cpu
		Expect(seeded).To(HaveLen(n))

		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		var ok, failed atomic.Int64
		work := make(chan string)
		var wg sync.WaitGroup
		start, cpu = time.Now(), cpuTime()
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ip := range work {
					resp, err := client.Get(e.statusURL(ip))
					if err != nil {
						failed.Add(1)
						continue
					}
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
					} else {
						failed.Add(1)
					}
				}
			}()
		}
		for _, sm := range seeded {
			work <- sm.PrivateIP
		}
		close(work)
		wg.Wait()
		probeTime, probeCPU := time.Since(start), cpuTime()-cpu

		start, cpu = time.Now(), cpuTime()
		r := e.api("GET", "?summary=true", nil)
		listTime, listCPU := time.Since(start), cpuTime()-cpu
		Expect(r.code).To(Equal(200))
		start = time.Now()
		r = e.api("GET", "", nil)
		fullListTime := time.Since(start)
		Expect(r.code).To(Equal(200))

		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		report := fmt.Sprintf("machines=%d fdlimit=%d seed=%v (cpu %v) probes=%v (cpu %v, client and server; %.0f/s, ok=%d failed=%d) list-summary=%v (cpu %v) list-full=%v (%d KB) heap-inuse=+%d MB sys=%d MB goroutines=+%d rss=%s",
			n, soft, seedTime.Round(time.Millisecond), seedCPU.Round(time.Millisecond), probeTime.Round(time.Millisecond), probeCPU.Round(time.Millisecond),
			float64(n)/probeTime.Seconds(), ok.Load(), failed.Load(),
			listTime.Round(time.Millisecond), listCPU.Round(time.Millisecond), fullListTime.Round(time.Millisecond), len(r.body)/1024,
			(after.HeapInuse-before.HeapInuse)>>20, after.Sys>>20, runtime.NumGoroutine()-goroutinesBefore, rss())
		AddReportEntry("scale", report)
		GinkgoWriter.Println(report)
		Expect(ok.Load()).To(BeEquivalentTo(n))
		client.CloseIdleConnections()
	})
})

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss reads VmRSS from /proc/self/status.
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}
