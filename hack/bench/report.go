package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Targets of issue 6, checked at the largest N (issue 6 names N = 10,000)
// or at every N where the target is zero.
const (
	cpuPerProbeTarget = 100 * time.Microsecond
	peakRSSTarget     = 150_000_000 // bytes (150 MB)
)

// verdicts.
const (
	pass   = "pass"
	missed = "MISSED"
)

// percentile returns the nearest-rank p-th percentile of sorted values,
// counting undetected values as +Inf (they sort after every detection).
func percentile(sorted []time.Duration, undetected int, p float64) (time.Duration, bool) {
	total := len(sorted) + undetected
	if total == 0 {
		return 0, false
	}
	rank := int(math.Ceil(p / 100 * float64(total)))
	rank = max(rank, 1)
	if rank > len(sorted) {
		return 0, false // an undetected break
	}
	return sorted[rank-1], true
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

// tableRow is one line of the report.
type tableRow struct {
	metric  string
	cells   []string
	target  string
	verdict string
}

// report builds the rows over every result; the last result is the one
// the N-specific targets apply to.
func report(s settings, results []*result) []tableRow {
	last := len(results) - 1
	nLabel := fmt.Sprintf("N=%s", thousands(results[last].n))
	var rows []tableRow
	add := func(metric string, cell func(r *result) string, target string, ok func(r *result) bool, everyN bool) {
		row := tableRow{metric: metric, target: target}
		for _, r := range results {
			row.cells = append(row.cells, cell(r))
		}
		if ok != nil {
			row.verdict = pass
			for i, r := range results {
				if (everyN || i == last) && !ok(r) {
					row.verdict = missed
				}
			}
			if everyN {
				row.target += " (every N)"
			} else {
				row.target += " (" + nLabel + ")"
			}
		}
		rows = append(rows, row)
	}

	detTarget := s.detectionTarget()
	for _, k := range []breakKind{kind500, kindStop} {
		add(fmt.Sprintf("%s: detected", k), func(r *result) string {
			return fmt.Sprintf("%d / %d", len(r.latency[k]), r.broken[k])
		}, "all", func(r *result) bool { return r.undetected[k] == 0 }, true)
		for _, p := range []float64{50, 95, 99, 100} {
			name := fmt.Sprintf("%s: detection p%g", k, p)
			if p == 100 {
				name = fmt.Sprintf("%s: detection max", k)
			}
			cell := func(r *result) string {
				v, ok := percentile(r.latency[k], r.undetected[k], p)
				if !ok {
					return "undetected"
				}
				return fmt.Sprintf("%.2fs", v.Seconds())
			}
			if p == 99 {
				add(name, cell, fmt.Sprintf("≤ %s", detTarget), func(r *result) bool {
					v, ok := percentile(r.latency[k], r.undetected[k], p)
					return ok && v <= detTarget
				}, false)
			} else {
				add(name, cell, "", nil, false)
			}
		}
	}
	add("wrong transitions of untouched deployments", func(r *result) string {
		return fmt.Sprintf("%d", r.wrongUntouched+r.untouchedNotRunning)
	}, "= 0", func(r *result) bool { return r.wrongUntouched+r.untouchedNotRunning == 0 }, true)
	add("unexpected events of broken deployments", func(r *result) string {
		return fmt.Sprintf("%d", r.wrongBroken)
	}, "= 0", func(r *result) bool { return r.wrongBroken == 0 }, true)
	add("DB writes per healthy probe", func(r *result) string {
		return fmt.Sprintf("%g (%d / %s)", ratio(float64(r.healthy.rowWrites), r.healthy.probes), r.healthy.rowWrites, thousands(int(r.healthy.probes)))
	}, "= 0", func(r *result) bool { return r.healthy.rowWrites == 0 }, true)
	add("Fly API calls per healthy probe", func(r *result) string {
		return fmt.Sprintf("%g (%d / %s)", ratio(float64(r.healthy.flyTotal()), r.healthy.probes), r.healthy.flyTotal(), thousands(int(r.healthy.probes)))
	}, "= 0", func(r *result) bool { return r.healthy.flyTotal() == 0 }, true)
	add("flightdeck CPU per probe (healthy window)", func(r *result) string {
		return fmt.Sprintf("%.3f ms", float64(r.healthy.cpuPerProbe())/float64(time.Millisecond))
	}, fmt.Sprintf("≤ %.1f ms", float64(cpuPerProbeTarget)/float64(time.Millisecond)), func(r *result) bool {
		return r.healthy.cpuPerProbe() <= cpuPerProbeTarget
	}, false)
	add("flightdeck CPU, % of one core (healthy window)", func(r *result) string {
		return fmt.Sprintf("%.1f%%", 100*r.healthy.cpu.Seconds()/r.healthy.wall.Seconds())
	}, "", nil, false)
	add("flightdeck CPU in the kernel (system time share)", func(r *result) string {
		return fmt.Sprintf("%.0f%%", 100*r.healthy.cpuSys.Seconds()/r.healthy.cpu.Seconds())
	}, "", nil, false)
	add("flightdeck peak RSS (VmHWM)", func(r *result) string {
		return fmt.Sprintf("%.1f MB", float64(r.peakRSS)/1e6)
	}, fmt.Sprintf("≤ %d MB", peakRSSTarget/1_000_000), func(r *result) bool { return r.peakRSS <= peakRSSTarget }, false)
	add("probes per second, healthy window (N / CHECK_INTERVAL)", func(r *result) string {
		return fmt.Sprintf("%s (%s)", thousands(int(math.Round(r.healthy.probes/r.healthy.wall.Seconds()))),
			thousands(int(math.Round(float64(r.n)/s.checkInterval.Seconds()))))
	}, "", nil, false)
	add("probe duration p50 / p99, healthy window (bucket bound)", func(r *result) string {
		return fmt.Sprintf("≤ %s / ≤ %s", seconds(r.healthy.probeP50), seconds(r.healthy.probeP99))
	}, "", nil, false)
	add("workqueue wait p50 / p99, healthy window (bucket bound)", func(r *result) string {
		return fmt.Sprintf("≤ %s / ≤ %s", seconds(r.healthy.queueP50), seconds(r.healthy.queueP99))
	}, "", nil, false)
	add("workqueue wait p50 / p99, break window (bucket bound)", func(r *result) string {
		return fmt.Sprintf("≤ %s / ≤ %s", seconds(r.breaking.queueP50), seconds(r.breaking.queueP99))
	}, "", nil, false)
	add("failed probes in the healthy window", func(r *result) string {
		return fmt.Sprintf("%.0f", r.healthy.failedProbes)
	}, "", nil, false)
	add("flightdeck CPU per probe (break window)", func(r *result) string {
		return fmt.Sprintf("%.3f ms", float64(r.breaking.cpuPerProbe())/float64(time.Millisecond))
	}, "", nil, false)
	add("status changes written (break window)", func(r *result) string {
		return fmt.Sprintf("%d", r.breaking.changes)
	}, "", nil, false)
	add("DB writes per status change (break window)", func(r *result) string {
		return fmt.Sprintf("%.2f (%d / %d)", ratio(float64(r.breaking.rowWrites), float64(r.breaking.changes)), r.breaking.rowWrites, r.breaking.changes)
	}, "", nil, false)
	endpoints := map[string]bool{}
	for _, r := range results {
		for ep := range r.breaking.fly {
			endpoints[ep] = true
		}
	}
	eps := make([]string, 0, len(endpoints))
	for ep := range endpoints {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	if len(eps) == 0 {
		add("Fly API calls per minute (break window)", func(r *result) string { return "0" }, "", nil, false)
	}
	for _, ep := range eps {
		add(fmt.Sprintf("Fly API calls per minute, %s (break window)", ep), func(r *result) string {
			return fmt.Sprintf("%.0f", float64(r.breaking.fly[ep])/r.breaking.wall.Minutes())
		}, "", nil, false)
	}
	add("other DB writes per minute (leader lease)", func(r *result) string {
		w := r.healthy.otherWrites + r.breaking.otherWrites
		return fmt.Sprintf("%.0f", float64(w)/(r.healthy.wall+r.breaking.wall).Minutes())
	}, "", nil, false)
	add("flightdeck open files / limit", func(r *result) string {
		return fmt.Sprintf("%s / %s", thousands(r.fds), thousands(r.fdLimit))
	}, "", nil, false)
	add("simulator peak open files / limit", func(r *result) string {
		return fmt.Sprintf("%s / %s", thousands(r.simPeakFDs), thousands(r.simFDLimit))
	}, "", nil, false)
	add("simulator CPU, % of one core (healthy window)", func(r *result) string {
		return fmt.Sprintf("%.1f%%", 100*r.healthy.simCPU.Seconds()/r.healthy.wall.Seconds())
	}, "", nil, false)
	add("flightdeck start until every row was probed", func(r *result) string {
		return fmt.Sprintf("%.1fs", r.startup.Seconds())
	}, "", nil, false)
	add("flightdeck stop on SIGTERM", func(r *result) string {
		if r.stopErr != nil {
			return "not clean: " + r.stopErr.Error()
		}
		return "clean"
	}, "", nil, false)
	add("load average (1 min) at start → end", func(r *result) string {
		return fmt.Sprintf("%.2f → %.2f", r.loadStart, r.loadEnd)
	}, "", nil, false)
	return rows
}

// seconds prints a bucket bound: 0.0025 as 2.5ms, 10 as 10s.
func seconds(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return time.Duration(math.Round(v * float64(time.Second))).String()
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return round(a/b, 6)
}

// thousands prints n with comma separators.
func thousands(n int) string {
	s := fmt.Sprintf("%d", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// printReport prints the machine, the settings and the table, in Markdown
// so that it can go into docs/benchmarks.md as it is.
func printReport(w io.Writer, s settings, m machineInfo, results []*result, argv []string) {
	fmt.Fprintf(w, "## flightdeck benchmark, %s\n\n", m.date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- command: `go run ./hack/bench %s`\n", strings.Join(argv[1:], " "))
	fmt.Fprintf(w, "- machine: %d CPUs (%s), %s RAM, Linux %s, %s\n", m.cpus, m.cpuModel, m.memTotal, m.kernel, m.goVersion)
	fmt.Fprintf(w, "- settings: CHECK_INTERVAL=%s PROBE_TIMEOUT=%s STARTUP_POLL_INTERVAL=%s; warm-up %s, healthy window %s, break window %s; %.0f%% answer 500, %.0f%% autostopped; seed %d\n",
		s.checkInterval, s.probeTimeout, s.startupPollInterval, s.warmup, s.healthy, s.window,
		100*s.breakFraction, 100*s.stopFraction, s.seed)
	if len(s.extraEnv) > 0 || s.maxConcurrent > 0 || s.cpuProfile != "" || s.overlay != "" {
		fmt.Fprintf(w, "- flightdeck extras: env %v, MAX_CONCURRENT_RECONCILES %d, CPU profile %q, build overlay %q\n",
			s.extraEnv, s.maxConcurrent, s.cpuProfile, s.overlay)
	}
	fmt.Fprintln(w)

	rows := report(s, results)
	header := []string{"metric"}
	for _, r := range results {
		header = append(header, "N="+thousands(r.n))
	}
	header = append(header, "target", "result")
	table := [][]string{header}
	for _, row := range rows {
		line := append([]string{row.metric}, row.cells...)
		table = append(table, append(line, row.target, row.verdict))
	}
	widths := make([]int, len(header))
	for _, line := range table {
		for i, c := range line {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for i, line := range table {
		cells := make([]string, len(line))
		for j, c := range line {
			cells[j] = c + strings.Repeat(" ", widths[j]-len([]rune(c)))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		if i == 0 {
			seps := make([]string, len(line))
			for j := range line {
				seps[j] = strings.Repeat("-", widths[j])
			}
			fmt.Fprintf(w, "|-%s-|\n", strings.Join(seps, "-|-"))
		}
	}
	for _, r := range results {
		if float64(r.simPeakFDs) >= 0.98*float64(r.simFDLimit) {
			fmt.Fprintf(w, "\nWarning: at N=%s the simulator held %s open files of its limit %s: near the limit it cannot accept probe connections, and failures would be the harness's, not flightdeck's.\n",
				thousands(r.n), thousands(r.simPeakFDs), thousands(r.simFDLimit))
		}
	}
	missedAny := false
	for _, row := range rows {
		if row.verdict == missed {
			missedAny = true
		}
	}
	fmt.Fprintln(w)
	if missedAny {
		fmt.Fprintln(w, "Some targets were MISSED (see the result column).")
	} else {
		fmt.Fprintln(w, "Every target was met.")
	}
}
