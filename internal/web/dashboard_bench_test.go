package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/store"
)

// recordedStats is web.Stats over a real series.Recorder, as a one-node
// sipward serves it (app's clusterStats without peers): the node's view and
// the accounts' names.
type recordedStats struct {
	r     *series.Recorder
	names map[int64]string
	now   func() time.Time
}

func (s recordedStats) Dashboard(_ context.Context, q series.Query) (series.View, error) {
	v, err := s.r.View(q, s.now(), series.TopSources)
	for i := range v.Accounts {
		v.Accounts[i].Name = s.names[v.Accounts[i].ID]
	}
	return v, err
}

func (s recordedStats) Latency(_ context.Context, id int64, span time.Duration) ([]series.LatencyPoint, error) {
	return s.r.Latency(id, span, s.now()), nil
}

// recordDay fills r with the 24 hours before end: in every 10-second step
// four accounts' calls and registrations (cycling through ids), refusals of
// several stages and sources, and a challenge.
func recordDay(r *series.Recorder, ids []int64, end time.Time) {
	stages := []string{"identify", "authn", "limits", "route", "sanity", "firewall"}
	steps := int(series.Span / series.Bucket)
	k := 0
	for i := range steps {
		now := end.Add(-series.Span + time.Duration(i)*series.Bucket)
		for range 4 {
			id := ids[k%len(ids)]
			r.Record(series.Event{Method: "INVITE", AccountID: id, Stage: "route", Status: 200, Accepted: true}, now)
			r.Record(series.Event{Method: "REGISTER", AccountID: id, Stage: "registrar", Status: 200, Accepted: true}, now)
			k++
		}
		src := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		r.Record(series.Event{Method: "INVITE", AccountID: ids[i%len(ids)], Source: src, Stage: stages[i%len(stages)], Status: 403 + i%7, Reason: "Forbidden"}, now)
		r.Record(series.Event{Method: "INVITE", Source: src.Next(), Stage: "identify", Status: 403, Reason: "Forbidden"}, now)
		r.Record(series.Event{Method: "INVITE", AccountID: ids[0], Stage: "authn", Status: 407, Reason: "Proxy Authentication Required"}, now)
	}
}

// BenchmarkDashboardRecorded is the mark, measured whole: the
// operator's dashboard page, server time, with 24 hours of recorded traffic
// of 1,000 accounts (every 10-second step filled), for the default window
// and the day:
//
//	go test -run X -bench DashboardRecorded -benchmem ./internal/web/
func BenchmarkDashboardRecorded(b *testing.B) {
	rec := series.NewRecorder()
	var st recordedStats
	e := newEnv(b, func(o *Options) { o.Stats = &st })
	e.login("root", opPass, 0)
	names := map[int64]string{}
	var ids []int64
	err := e.svc.Store().Update(context.Background(), func(tx store.Tx) error {
		for i := range 1000 {
			a := store.Account{Name: fmt.Sprintf("Account %04d with a long name", i)}
			if err := tx.CreateAccount(context.Background(), &a); err != nil {
				return err
			}
			names[a.ID], ids = a.Name, append(ids, a.ID)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	st = recordedStats{r: rec, names: names, now: e.clock.Now}
	recordDay(rec, ids, e.clock.Now())
	br := e.browser()
	br.mustSignIn("root", opPass)
	cookies := br.c.Jar.Cookies(mustURL(b, e.srv.URL))
	for _, w := range []string{"1h", "24h"} {
		b.Run(w, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/?window="+w, nil)
				for _, c := range cookies {
					req.AddCookie(c)
				}
				rw := httptest.NewRecorder()
				e.web.ServeHTTP(rw, req)
				if rw.Code != http.StatusOK {
					b.Fatalf("GET /?window=%s: %d", w, rw.Code)
				}
			}
		})
	}
}
