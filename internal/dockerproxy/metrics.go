package dockerproxy

import "github.com/prometheus/client_golang/prometheus"

// CacheCounts returns how many inspections were served from the cache
// and how many were fetched from the engine.
func (p *Proxy) CacheCounts() (hits, misses uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Hits, p.Misses
}

// Metrics exports the cache's hits and misses, for `darse docker-proxy
// --metrics`.
func (p *Proxy) Metrics() prometheus.Collector { return cacheMetrics{p} }

type cacheMetrics struct{ p *Proxy }

var (
	hitsDesc   = prometheus.NewDesc("darse_dockerproxy_cache_hits_total", "Container inspections served from the proxy's cache.", nil, nil)
	missesDesc = prometheus.NewDesc("darse_dockerproxy_cache_misses_total", "Container inspections fetched from the engine (not cached, or made stale by an event).", nil, nil)
)

func (cacheMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- hitsDesc
	ch <- missesDesc
}

func (m cacheMetrics) Collect(ch chan<- prometheus.Metric) {
	hits, misses := m.p.CacheCounts()
	ch <- prometheus.MustNewConstMetric(hitsDesc, prometheus.CounterValue, float64(hits))
	ch <- prometheus.MustNewConstMetric(missesDesc, prometheus.CounterValue, float64(misses))
}
