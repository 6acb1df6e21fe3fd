package runtime

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are per process (one function), on a registry of their own so tests can run
// several servers in one process.
type metrics struct {
	// series caches the label-bound counters and histograms by (route, method, status):
	// resolving label values on every request showed in profiles of the poll path.
	series   sync.Map
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

func newMetrics(function string) *metrics {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"function": function}
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sscard_function_requests_total", Help: "Invocations by route pattern, method and status.",
			ConstLabels: labels,
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sscard_function_request_duration_seconds", Help: "Invocation duration by route pattern.",
			ConstLabels: labels,
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30},
		}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sscard_function_requests_in_flight", Help: "Invocations being served.", ConstLabels: labels,
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inflight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

type seriesKey struct {
	route, method string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func (m *metrics) observe(route, method string, status int, took time.Duration) {
	k := seriesKey{route, method, status}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, series{
			requests: m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(route),
		})
	}
	s := v.(series)
	s.requests.Inc()
	s.duration.Observe(took.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
