package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/store"
)

// chartData is one chart as static/dashboard.js draws it with uPlot: the
// times of the points (Unix seconds, UTC) and one line per series.
type chartData struct {
	X     []int64     `json:"x"`
	Lines []chartLine `json:"lines"`
}

// chartLine is one series of a chart; Name picks its colour.
type chartLine struct {
	Name   string    `json:"name"`
	Label  string    `json:"label"`
	Values []float64 `json:"values"`
}

// chartTable is a chart's table fallback: the same figures, in coarser
// rows, for readers without script and for screen readers.
type chartTable struct {
	Heads []string
	Rows  []chartRow
}

// chartBlock is a chart on a page: its element's id, the id of the data
// block holding its data (Src), its words, and its table fallback, whose
// first Lines columns are the chart's lines.
type chartBlock struct {
	ID, Caption, Summary, Src string
	Lines                     int
	Table                     chartTable
}

type chartRow struct {
	From, To string // the row's time range, UTC
	Time     time.Time
	Cells    []string
}

// lineLabels are the words the dashboard uses for series.Line names.
var lineLabels = map[string]string{
	"calls":            "Calls",
	"rejected":         "Rejected",
	"challenges":       "Challenges (401/407)",
	"registrations":    "Registrations",
	"register_rejects": "Register rejects",
	"bans":             "Bans",
}

func lineLabel(name string) string {
	if l, ok := lineLabels[name]; ok {
		return l
	}
	return name
}

// steps is how many values the chart's lines hold.
func steps(c series.Chart) int {
	n := 0
	for _, l := range c.Lines {
		n = max(n, len(l.Values))
	}
	return n
}

// countChart turns a series.Chart into chart data: one point per step.
func countChart(c series.Chart) chartData {
	n := steps(c)
	d := chartData{X: make([]int64, n), Lines: make([]chartLine, len(c.Lines))}
	for i := range n {
		d.X[i] = c.Start.Add(time.Duration(i) * c.Step).Unix()
	}
	for i, l := range c.Lines {
		vs := make([]float64, n)
		for j, v := range l.Values {
			vs[j] = float64(v)
		}
		d.Lines[i] = chartLine{Name: l.Name, Label: lineLabel(l.Name), Values: vs}
	}
	return d
}

// countTable sums a chart's steps into rows of per (a multiple of its
// step), labelled in layout.
func countTable(c series.Chart, per time.Duration, layout string) chartTable {
	var t chartTable
	for _, l := range c.Lines {
		t.Heads = append(t.Heads, lineLabel(l.Name))
	}
	n := steps(c)
	if c.Step <= 0 || n == 0 {
		return t
	}
	group := max(1, int(per/c.Step))
	for g := 0; g < n; g += group {
		end := min(g+group, n)
		from := c.Start.Add(time.Duration(g) * c.Step).UTC()
		row := chartRow{From: from.Format(layout), To: c.Start.Add(time.Duration(end) * c.Step).UTC().Format("15:04"), Time: from}
		for _, l := range c.Lines {
			var sum int64
			for _, v := range l.Values[min(g, len(l.Values)):min(end, len(l.Values))] {
				sum += v
			}
			row.Cells = append(row.Cells, strconv.FormatInt(sum, 10))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// ---- A SIP user's NAT-ping latency over the last 24 hours.

// latencySpan is how far back the SIP user page's latency chart reaches.
const latencySpan = 24 * time.Hour

// latencyView is the latency block of the SIP user page.
type latencyView struct {
	Available bool   // the node has Stats
	Error     string // the points could not be read
	Points    int
	Charts    map[string]chartData
	Chart     chartBlock
}

// loadLatency reads a SIP user's ping round trips of the last 24 hours.
func (s *Server) loadLatency(r *http.Request, u *store.SIPUser) *latencyView {
	v := &latencyView{Available: s.stats != nil}
	if s.stats == nil {
		return v
	}
	ps, err := s.stats.Latency(r.Context(), u.ID, latencySpan)
	if err != nil {
		s.log.Error("web: ping latency", "sip_user", u.ID, "err", err)
		v.Error = "The ping latency could not be read; the error is in the server's log."
		return v
	}
	v.Points = len(ps)
	v.Charts = map[string]chartData{"latency": latencyChart(ps)}
	v.Chart = chartBlock{ID: "latency", Src: "latency-data", Lines: 3, Table: latencyTable(ps),
		Caption: "Ping round trip of the last 24 hours, in milliseconds", Summary: "Ping round trip per hour, as a table"}
	return v
}

func latencyChart(ps []series.LatencyPoint) chartData {
	d := chartData{X: make([]int64, len(ps)), Lines: []chartLine{
		{Name: "min", Label: "Fastest", Values: make([]float64, len(ps))},
		{Name: "avg", Label: "Mean", Values: make([]float64, len(ps))},
		{Name: "max", Label: "Slowest", Values: make([]float64, len(ps))},
	}}
	for i, p := range ps {
		d.X[i] = p.Time.Unix()
		d.Lines[0].Values[i], d.Lines[1].Values[i], d.Lines[2].Values[i] = p.MinMS, p.AvgMS, p.MaxMS
	}
	return d
}

// latencyTable folds the points into hours: the fastest and slowest round
// trip of the hour, the mean weighted by the pings of each point, and the
// number of pings answered.
func latencyTable(ps []series.LatencyPoint) chartTable {
	t := chartTable{Heads: []string{"Fastest (ms)", "Mean (ms)", "Slowest (ms)", "Pings answered"}}
	for i := 0; i < len(ps); {
		hour := ps[i].Time.UTC().Truncate(time.Hour)
		lo, hi, sum, n := ps[i].MinMS, ps[i].MaxMS, 0.0, int64(0)
		for ; i < len(ps) && ps[i].Time.UTC().Truncate(time.Hour).Equal(hour); i++ {
			c := max(ps[i].Count, 1)
			lo, hi = min(lo, ps[i].MinMS), max(hi, ps[i].MaxMS)
			sum += ps[i].AvgMS * float64(c)
			n += c
		}
		t.Rows = append(t.Rows, chartRow{From: hour.Format("Jan 2 15:04"), To: hour.Add(time.Hour).Format("15:04"), Time: hour,
			Cells: []string{fmtMS(lo), fmtMS(sum / float64(n)), fmtMS(hi), strconv.FormatInt(n, 10)}})
	}
	return t
}

func fmtMS(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
