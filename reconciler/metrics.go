package reconciler

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flightdeck/flightdeck/store/status"
)

// The application's metrics live in controller-runtime's registry, beside
// controller_runtime_* and workqueue_*, so one /metrics serves them all.
var (
	probeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flightdeck_probe_duration_seconds",
		Help:    "Duration of /status probes by result (ok, http_status, refused, reset, timeout, dns, other).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"result"})
	transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flightdeck_transitions_total",
		Help: "Deployment status transitions written, by from and to status.",
	}, []string{"from", "to"})
	flyRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flightdeck_fly_api_requests_total",
		Help: "Fly Machines API requests by endpoint and HTTP status code (0 = no response).",
	}, []string{"endpoint", "code"})
	flyDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flightdeck_fly_api_request_duration_seconds",
		Help:    "Duration of Fly Machines API requests by endpoint.",
		Buckets: prometheus.DefBuckets,
	}, []string{"endpoint"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(probeDuration, transitions, flyRequests, flyDuration)
}

// ObserveFlyRequest records one Fly API call; it is the Fly client's
// OnRequest hook.
func ObserveFlyRequest(endpoint string, code int, d time.Duration) {
	flyRequests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	flyDuration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// statusCollector exports the number of deployments by status from the
// cache at scrape time, so the gauge never drifts from the rows.
type statusCollector struct {
	cache *Cache
	desc  *prometheus.Desc
}

// RegisterStatusGauge exports flightdeck_deployments{status} computed from
// cache. Call it once per process (a second registration is an error).
func RegisterStatusGauge(cache *Cache) error {
	return ctrlmetrics.Registry.Register(&statusCollector{
		cache: cache,
		desc: prometheus.NewDesc("flightdeck_deployments",
			"Deployments known to the controller by status (rows marked deleted are not counted).",
			[]string{"status"}, nil),
	})
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	for s, n := range c.cache.CountByStatus() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(s))
	}
}

// observeTransition counts one written transition.
func observeTransition(from, to status.Status) {
	transitions.WithLabelValues(string(from), string(to)).Inc()
}
