package app

import (
	"context"
	"time"

	"github.com/sipward/sipward/internal/api"
	"github.com/sipward/sipward/internal/nodes"
	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/web"
)

// clusterStats is the dashboard's data (web.Stats, api.Stats): the series
// of every up node, merged (nodes.Views), with the live calls and
// registrations of the cluster and the accounts' names of the serving
// configuration.
type clusterStats struct {
	views *nodes.Views
	live  web.Live // merged across the cluster
	snap  func() *snapshot.Snapshot
	now   func() time.Time
}

var (
	_ web.Stats = clusterStats{}
	_ api.Stats = clusterStats{}
)

func (s clusterStats) Dashboard(ctx context.Context, q series.Query) (series.View, error) {
	ctx, cancel := context.WithTimeout(ctx, nodes.PeerTimeout)
	defer cancel()
	v, err := s.views.Dashboard(ctx, q, s.now())
	if err != nil {
		return series.View{}, err
	}
	v.ActiveCalls = len(s.live.Calls(q.AccountID))
	v.Registered = len(s.live.Registrations(q.AccountID, ""))
	if sn := s.snap(); sn != nil {
		for i := range v.Accounts {
			if a := sn.Account(v.Accounts[i].ID); a != nil {
				v.Accounts[i].Name = a.Name
			}
		}
	}
	return v, nil
}

func (s clusterStats) Latency(ctx context.Context, sipUserID int64, span time.Duration) ([]series.LatencyPoint, error) {
	ctx, cancel := context.WithTimeout(ctx, nodes.PeerTimeout)
	defer cancel()
	return s.views.Latency(ctx, sipUserID, span, s.now()), nil
}
