package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/series"
)

// Stats is the dashboard's data, merged across the cluster's nodes (the
// web UI's Stats).
type Stats interface {
	Dashboard(ctx context.Context, q series.Query) (series.View, error)
	Latency(ctx context.Context, sipUserID int64, span time.Duration) ([]series.LatencyPoint, error)
}

// Dashboard returns the routes of the dashboard's data: GET /dashboard (the
// operator's of every account or of one; an account token's of its own
// account) and GET /sip-users/{id}/latency.
func Dashboard(st Stats, svc *provision.Service) []Extension {
	return []Extension{
		{Method: "GET", Path: "/api/v1/dashboard", Tag: "live", Out: series.View{},
			Summary: "Dashboard: live calls and registrations, CPS, counts over window (1m to 24h, default 1h) of calls, rejects by stage and reason, challenges, registrations, bans, top refused sources, per-account traffic, and hour and day charts, of every up node; account_id selects one account (an account token sees its own)",
			Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				return dashboard(st, svc, w, r, c)
			}},
		{Method: "GET", Path: "/api/v1/sip-users/{id}/latency", Tag: "sip-users", Out: liveItems[series.LatencyPoint]{},
			Summary: "A SIP user's NAT-ping round trips over span (10m to 24h, default 24h): min, mean and max per 10-minute step, oldest first",
			Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				return latency(st, svc, w, r, c)
			}},
	}
}

// dashboard is GET /dashboard.
func dashboard(st Stats, svc *provision.Service, w http.ResponseWriter, r *http.Request, c provision.Caller) error {
	p := r.URL.Query()
	q := series.Query{AccountID: c.AccountID}
	if s := p.Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute || d > series.Span {
			return BadRequest("window", "must be a duration from 1m to 24h, such as 15m or 6h")
		}
		q.Window = d
	}
	if s := p.Get("account_id"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return BadRequest("account_id", "must be an account ID")
		}
		if _, err := svc.GetAccount(r.Context(), c, id); err != nil {
			return err // another account's: refused as its own route refuses it
		}
		q.AccountID = id
	}
	v, err := st.Dashboard(r.Context(), q)
	if err != nil {
		return err
	}
	return writeLive(w, v)
}

// latency is GET /sip-users/{id}/latency.
func latency(st Stats, svc *provision.Service, w http.ResponseWriter, r *http.Request, c provision.Caller) error {
	uid, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return NotFound("no such SIP user")
	}
	if _, err := svc.GetSIPUser(r.Context(), c, uid); err != nil {
		return err
	}
	span := series.Span
	if s := r.URL.Query().Get("span"); s != "" {
		if span, err = time.ParseDuration(s); err != nil || span < series.LatencyStep || span > series.Span {
			return BadRequest("span", "must be a duration from 10m to 24h, such as 6h")
		}
	}
	pts, err := st.Latency(r.Context(), uid, span)
	if err != nil {
		return err
	}
	if pts == nil {
		pts = []series.LatencyPoint{}
	}
	return writeLive(w, liveItems[series.LatencyPoint]{Items: pts, Total: len(pts)})
}
