package panel

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// Charts of a site's (or the host's) history, drawn here as SVG so that
// the pages show them as images, without a script.

// chartSpan is a chart's time range and the history step it reads.
type chartSpan struct {
	Name string
	Span time.Duration
	Step int
}

var chartSpans = map[string]chartSpan{
	"day":  {"day", store.KeepMinutes, store.StepMinute},
	"week": {"week", store.KeepQuarter, store.StepQuarter},
}

// chartMetric turns history points into one or more series of values.
type chartMetric struct {
	Title  string
	Unit   func(float64) string
	Series []chartSeries
}

type chartSeries struct {
	Name  string
	Value func(p store.Point) float64
}

var chartMetrics = map[string]chartMetric{
	"cpu": {Title: "CPU (% of one core)", Unit: func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "%" },
		Series: []chartSeries{{"cpu", func(p store.Point) float64 { return float64(p.CPUMilli) / 10 / float64(p.Step) }}}},
	"memory": {Title: "Memory", Unit: bytesUnit,
		Series: []chartSeries{{"memory", func(p store.Point) float64 { return float64(p.Memory) }}}},
	"network": {Title: "Network (per second: received, sent)", Unit: func(v float64) string { return bytesUnit(v) + "/s" },
		Series: []chartSeries{
			{"rx", func(p store.Point) float64 { return float64(p.Receive) / float64(p.Step) }},
			{"tx", func(p store.Point) float64 { return float64(p.Transmit) / float64(p.Step) }},
		}},
}

func bytesUnit(v float64) string {
	for _, u := range []struct {
		n    float64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if v >= u.n {
			return strconv.FormatFloat(v/u.n, 'f', 1, 64) + " " + u.name
		}
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " B"
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH      = 640, 160
	chartLeft, chartTop = 76, 20
	chartBottom         = 22
	plotW               = chartW - chartLeft - 8
	plotH               = chartH - chartTop - chartBottom
)

// renderChart draws points from from to to: one polyline per series and
// per stretch without a gap (a missing point breaks the line).
func renderChart(m chartMetric, points []store.Point, span chartSpan, from, to time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s, last %s">`,
		chartW, chartH, chartW, chartH, html.EscapeString(m.Title), span.Name)
	fmt.Fprintf(&b, `<title>%s, last %s</title>`, html.EscapeString(m.Title), span.Name)
	b.WriteString(`<style>text{font:11px sans-serif;fill:#555}.grid{stroke:#ddd;stroke-width:1}.series{fill:none;stroke-width:1.5}.series-cpu,.series-memory,.series-rx{stroke:#2563eb}.series-tx{stroke:#ea580c}</style>`)
	fmt.Fprintf(&b, `<text x="%d" y="13">%s</text>`, chartLeft, html.EscapeString(m.Title))
	top := 0.0
	for _, p := range points {
		for _, s := range m.Series {
			top = math.Max(top, s.Value(p))
		}
	}
	top = niceCeil(top)
	for i := 0; i <= 2; i++ { // grid lines at 0, half and the top
		y := float64(chartTop) + float64(plotH)*float64(i)/2
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, chartLeft, y, chartLeft+plotW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, chartLeft-4, y+4, html.EscapeString(m.Unit(top*float64(2-i)/2)))
	}
	layout := "15:04"
	if span.Step == store.StepQuarter {
		layout = "Mon 15:04"
	}
	for i, t := range []time.Time{from, from.Add(to.Sub(from) / 2), to} {
		anchor := []string{"start", "middle", "end"}[i]
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="%s">%s</text>`, xOf(t, from, to), chartH-6, anchor, t.UTC().Format(layout))
	}
	if len(points) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">No history yet</text>`, chartLeft+plotW/2, chartTop+plotH/2)
	}
	for _, s := range m.Series {
		for _, run := range runs(points, span.Step) {
			fmt.Fprintf(&b, `<polyline class="series series-%s" data-series="%s" points="`, s.Name, s.Name)
			for i, p := range run {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%.1f,%.1f", xOf(p.At, from, to), yOf(s.Value(p), top))
			}
			b.WriteString(`"/>`)
		}
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}

// runs splits points where one or more steps are missing.
func runs(points []store.Point, step int) [][]store.Point {
	var out [][]store.Point
	start := 0
	for i := 1; i <= len(points); i++ {
		if i == len(points) || points[i].At.Sub(points[i-1].At) > time.Duration(step)*time.Second*2 {
			out = append(out, points[start:i])
			start = i
		}
	}
	return out
}

func xOf(t, from, to time.Time) float64 {
	f := float64(t.Sub(from)) / float64(to.Sub(from))
	return float64(chartLeft) + math.Max(0, math.Min(1, f))*plotW
}

func yOf(v, top float64) float64 {
	return float64(chartTop) + plotH - v/top*plotH
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 when v is 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// chart serves one site's chart (site store.HostSite: the host's).
// ?metric= cpu, memory or network; ?range= day or week.
func (s *Server) chart(c *gin.Context, name string) error {
	m, ok := chartMetrics[c.DefaultQuery("metric", "cpu")]
	if !ok {
		return &site.FieldError{Field: "metric", Value: c.Query("metric"), Rule: "must be cpu, memory or network"}
	}
	span, ok := chartSpans[c.DefaultQuery("range", "day")]
	if !ok {
		return &site.FieldError{Field: "range", Value: c.Query("range"), Rule: "must be day or week"}
	}
	to := s.cfg.Now()
	from := to.Add(-span.Span)
	points, err := s.store.History(c.Request.Context(), name, span.Step, from)
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "private, max-age=60")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	c.Data(http.StatusOK, "image/svg+xml", renderChart(m, points, span, from, to))
	return nil
}

// siteChart is GET /sites/:site/history.svg, for the site's owner (and admins).
func (s *Server) siteChart(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	return s.chart(c, st.Name)
}

// hostChart is GET /admin/history.svg: the host's totals.
func (s *Server) hostChart(c *gin.Context) error { return s.chart(c, store.HostSite) }

// monitorView is the admin page's watch: open incidents, and the sites
// that used the most CPU over the last day.
type monitorView struct {
	Incidents []*store.Incident
	Top       []topSite
	Error     string
}

type topSite struct {
	Name, CPU, Traffic string
}

func (s *Server) monitor(ctx context.Context) monitorView {
	var v monitorView
	var errs []string
	var err error
	if v.Incidents, err = s.store.OpenIncidents(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	top, err := s.store.TopSites(ctx, s.cfg.Now().Add(-store.KeepMinutes), 5)
	if err != nil {
		errs = append(errs, err.Error())
	}
	for _, u := range top {
		v.Top = append(v.Top, topSite{Name: u.Site, CPU: (time.Duration(u.CPUMilli) * time.Millisecond).Round(time.Second).String(), Traffic: bytesUnit(float64(u.Traffic))})
	}
	if len(errs) > 0 {
		s.log.Warn("admin page: history and incidents", "err", strings.Join(errs, "; "))
		v.Error = "history and alerts could not be read"
	}
	return v
}

// chartNames are the metrics a page shows a chart of, in order.
func chartNames() []string { return []string{"cpu", "memory", "network"} }
