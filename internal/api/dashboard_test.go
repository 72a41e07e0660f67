package api

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/series"
)

// fakeStats answers the query it was asked, with a call per account.
type fakeStats struct{ asked []series.Query }

func (f *fakeStats) Dashboard(_ context.Context, q series.Query) (series.View, error) {
	f.asked = append(f.asked, q)
	return series.View{AccountID: q.AccountID, Window: q.Window, Totals: series.Totals{Calls: 1}}, nil
}

func (f *fakeStats) Latency(context.Context, int64, time.Duration) ([]series.LatencyPoint, error) {
	return []series.LatencyPoint{{MinMS: 1, AvgMS: 2, MaxMS: 3, Count: 2}}, nil
}

func TestDashboardWindowAndIsolation(t *testing.T) {
	st := &fakeStats{}
	h := newHarness(t, func(o *Options) { o.Extensions = Dashboard(st, o.Service) })
	a, b := h.account("Acme", 10), h.account("Beta", 0)
	bUser := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", b), map[string]any{"username": "b1"}))
	aUser := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "a1"}))
	tok := h.op(201, "POST", "/tokens", map[string]any{"name": "portal", "scope": "account", "account_id": a})["token"].(string)

	for _, w := range []string{"30s", "25h", "1hour", "-1h"} {
		st, m := h.call(opToken, "GET", "/dashboard?window="+w, nil)
		if st != 400 || errOf(m)["field"] != "window" {
			t.Errorf("window=%s: status %d %v; want 400 naming window", w, st, m)
		}
	}
	for _, tt := range []struct {
		token, query string
		want         int
		asked        series.Query
	}{
		{opToken, "", 200, series.Query{}},
		{opToken, "?window=15m", 200, series.Query{Window: 15 * time.Minute}},
		{opToken, fmt.Sprintf("?account_id=%d&window=24h", b), 200, series.Query{AccountID: b, Window: 24 * time.Hour}},
		{opToken, "?account_id=999", 404, series.Query{}},
		{tok, "", 200, series.Query{AccountID: a}},
		{tok, fmt.Sprintf("?account_id=%d", a), 200, series.Query{AccountID: a}},
		{tok, fmt.Sprintf("?account_id=%d", b), 404, series.Query{}},
	} {
		st.asked = nil
		code, m := h.call(tt.token, "GET", "/dashboard"+tt.query, nil)
		if code != tt.want {
			t.Errorf("GET /dashboard%s: status %d, want %d (%v)", tt.query, code, tt.want, m)
			continue
		}
		if code == 200 && (len(st.asked) != 1 || st.asked[0] != tt.asked) {
			t.Errorf("GET /dashboard%s asked the stats for %+v; want %+v", tt.query, st.asked, tt.asked)
		}
	}
	if code, m := h.call(tok, "GET", fmt.Sprintf("/sip-users/%d/latency", aUser), nil); code != 200 || m["total"].(float64) != 1 {
		t.Errorf("own user's latency: %d %v", code, m)
	}
	if code, _ := h.call(tok, "GET", fmt.Sprintf("/sip-users/%d/latency", bUser), nil); code != 404 {
		t.Errorf("another account's user's latency: status %d; want 404", code)
	}
	if code, m := h.call(opToken, "GET", fmt.Sprintf("/sip-users/%d/latency?span=1m", bUser), nil); code != 400 || errOf(m)["field"] != "span" {
		t.Errorf("span=1m: %d %v; want 400 naming span", code, m)
	}
}
