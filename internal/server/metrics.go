package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// counters and observers cache the children by label, so the hot path
	// neither formats the code nor hashes label values.
	counters  sync.Map // routeCode -> prometheus.Counter
	observers sync.Map // route -> prometheus.Observer
}

type routeCode struct {
	route string
	code  int
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_http_requests_total",
			Help: "HTTP requests served, by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvdb_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 1.5, 2.5, 5},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *httpMetrics) observe(route string, code int, d time.Duration) {
	k := routeCode{route, code}
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.requests.WithLabelValues(route, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
	if d > 0 {
		o, ok := m.observers.Load(route)
		if !ok {
			o, _ = m.observers.LoadOrStore(route, m.latency.WithLabelValues(route))
		}
		o.(prometheus.Observer).Observe(d.Seconds())
	}
}
