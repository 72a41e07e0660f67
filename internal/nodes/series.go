package nodes

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sipward/sipward/internal/series"
)

// Series is a node's own dashboard series (a *series.Recorder).
type Series interface {
	View(q series.Query, now time.Time, top int) (series.View, error)
	Latency(sipUserID int64, span time.Duration, now time.Time) []series.LatencyPoint
}

// UseSeries makes s this node's series: Dashboard and Latency merge it
// with the peers', and Handler answers it to them. Call it before Handler.
func (v *Views) UseSeries(s Series) { v.series = s }

// Dashboard returns the dashboard view q selects at now, of every up node
// that answered in time: each sends its partial view (with
// series.PeerSources sources), this node sums them (series.Merge) and names
// in MissingNodes the up peers that did not answer. ActiveCalls and
// Registered are left to the caller (the merged live state).
func (v *Views) Dashboard(ctx context.Context, q series.Query, now time.Time) (series.View, error) {
	own, err := v.localSeries(q, now)
	if err != nil {
		return series.View{}, err
	}
	parts, missing := gather[series.View](ctx, v, "series", seriesQuery(q, now), http.MethodGet)
	out := series.Merge(append([]series.View{own}, parts...)...)
	out.MissingNodes = missing
	return out, nil
}

// Latency returns a SIP user's ping round trips over span before now, as
// every up node that answered in time kept them (the node that pinged).
func (v *Views) Latency(ctx context.Context, sipUserID int64, span time.Duration, now time.Time) []series.LatencyPoint {
	var own []series.LatencyPoint
	if v.series != nil {
		own = v.series.Latency(sipUserID, span, now)
	}
	q := url.Values{"user": {strconv.FormatInt(sipUserID, 10)}, "span": {span.String()}, "at": {strconv.FormatInt(now.UnixNano(), 10)}}
	peers, _ := gather[series.LatencyPoint](ctx, v, "latency", q, http.MethodGet)
	return series.MergeLatency(own, peers)
}

func (v *Views) localSeries(q series.Query, now time.Time) (series.View, error) {
	if v.series == nil {
		w, err := q.CheckWindow()
		return series.View{Now: now, Window: w, AccountID: q.AccountID, Nodes: []string{v.reg.ID()}}, err
	}
	out, err := v.series.View(q, now, series.PeerSources)
	out.Nodes = []string{v.reg.ID()}
	return out, err
}

func seriesQuery(q series.Query, now time.Time) url.Values {
	return url.Values{"account": {strconv.FormatInt(q.AccountID, 10)}, "window": {q.Window.String()},
		"at": {strconv.FormatInt(now.UnixNano(), 10)}}
}

// seriesHandlers answer this node's series to its peers, computed at the
// asking node's time so that every node's steps line up.
func (v *Views) seriesHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PeerPath+"series", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query()
		aid, _ := strconv.ParseInt(p.Get("account"), 10, 64)
		win, _ := time.ParseDuration(p.Get("window"))
		view, err := v.localSeries(series.Query{AccountID: aid, Window: win}, askedAt(p))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writePeer(w, v.reg.ID(), []series.View{view})
	})
	mux.HandleFunc("GET "+PeerPath+"latency", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query()
		id, _ := strconv.ParseInt(p.Get("user"), 10, 64)
		span, _ := time.ParseDuration(p.Get("span"))
		var pts []series.LatencyPoint
		if v.series != nil {
			pts = v.series.Latency(id, span, askedAt(p))
		}
		writePeer(w, v.reg.ID(), pts)
	})
}

// askedAt is the time a peer request names ("at", Unix ns); signed
// requests are at most maxSkew old, so it is close to now.
func askedAt(p url.Values) time.Time {
	ns, _ := strconv.ParseInt(p.Get("at"), 10, 64)
	return time.Unix(0, ns)
}
