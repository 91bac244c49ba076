package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics is one scrape of /metrics.
type metrics []sample

// parseMetrics reads the Prometheus text exposition format (what promhttp
// writes): comments are skipped, label values unescaped, timestamps ignored.
func parseMetrics(r io.Reader) (metrics, error) {
	var out metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i < 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		} else {
			s.name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			var err error
			if rest, err = parseLabels(rest[1:], s.labels); err != nil {
				return nil, fmt.Errorf("metrics line %q: %w", line, err)
			}
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	return out, nil
}

// parseLabels reads `k="v",k2="v2"}` into labels and returns what follows
// the closing brace.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", fmt.Errorf("malformed labels")
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", fmt.Errorf("unterminated label value")
		}
		labels[key] = val.String()
		s = s[i+1:]
	}
}

// sum adds the values of every sample called name whose labels include
// match.
func (m metrics) sum(name string, match map[string]string) float64 {
	total := 0.0
next:
	for _, s := range m {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// byLabel adds the values of the samples called name per value of label.
func (m metrics) byLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.name == name {
			out[s.labels[label]] += s.value
		}
	}
	return out
}

// probeCount is the number of probes flightdeck made: the count of its
// probe duration histogram over every result.
func (m metrics) probeCount() float64 { return m.sum("flightdeck_probe_duration_seconds_count", nil) }

// scrapeMetrics GETs and parses a /metrics page.
func scrapeMetrics(ctx context.Context, hc *http.Client, url string) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping flightdeck's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping flightdeck's metrics: HTTP %d", resp.StatusCode)
	}
	m, err := parseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scraping flightdeck's metrics: %w", err)
	}
	return m, nil
}

// histogramDelta returns the cumulative bucket counts (by upper bound) that
// a histogram gained from a to b, over the series that match.
func histogramDelta(a, b metrics, name string, match map[string]string) (bounds []float64, counts []float64) {
	collect := func(m metrics) map[float64]float64 {
		out := map[float64]float64{}
	next:
		for _, s := range m {
			if s.name != name+"_bucket" {
				continue
			}
			for k, v := range match {
				if s.labels[k] != v {
					continue next
				}
			}
			le, err := strconv.ParseFloat(s.labels["le"], 64)
			if err != nil {
				continue
			}
			out[le] += s.value
		}
		return out
	}
	before, after := collect(a), collect(b)
	for le := range after {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	for _, le := range bounds {
		counts = append(counts, after[le]-before[le])
	}
	return bounds, counts
}

// histogramQuantile returns the upper bound of the bucket holding the q-th
// quantile (0..1) of what a histogram gained from a to b: "at most this".
// ok is false when nothing was observed.
func histogramQuantile(a, b metrics, name string, match map[string]string, q float64) (float64, bool) {
	bounds, counts := histogramDelta(a, b, name, match)
	if len(counts) == 0 || counts[len(counts)-1] <= 0 {
		return 0, false
	}
	rank := q * counts[len(counts)-1]
	for i, c := range counts {
		if c >= rank {
			return bounds[i], true
		}
	}
	return bounds[len(bounds)-1], true
}
