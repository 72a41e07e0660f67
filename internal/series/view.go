// Package series keeps a node's bounded time series of what its SIP edge
// decided — calls, rejects by stage and reason, challenges, registrations,
// bans, each account's traffic, each SIP user's ping latency — in
// 10-second buckets for 24 hours, and merges the series of every node of a
// cluster into the one picture the dashboard shows.
//
// This file holds the values the dashboard (web UI and REST API) reads; the
// recorder (recorder.go, account.go, latency.go, kinds.go), the views
// (query.go), the merge (merge.go) and the /metrics collector (metrics.go)
// live beside it.
//
// # What is counted
//
// The edge records every initial INVITE and REGISTER once, on the node that
// decided it: an INVITE passed on to the core (to the B2BUA, whatever the
// far end answers) is a call; a 401/407 a challenge; any other refusal or
// drop a reject (INVITE) or register reject (REGISTER), kept by method,
// stage, status and reason phrase, with its source address. Calls handed
// over by a peer node are counted by the peer only. Bans are counted where
// they are made: detection's by the firewall of the node that banned,
// operators' by the node whose API or UI made them. NAT-ping round trips
// are kept per SIP user by the node that pinged.
//
// # Bounds
//
// A node keeps 8,640 buckets of 10 seconds (24 h), each with its counters,
// at most 64 (account, kind) refusal counts (more: "other") and 32 refused
// sources (more: counted in OtherSources, so a scan of 100,000 addresses
// cannot grow memory). Kinds are interned, at most MaxKinds (256; later
// ones are "other"). An account gets, at its first event, 10-second steps
// for the last hour and 5-minute steps for the day; a counted window longer
// than an hour is summed from the 5-minute steps (it may take in up to 5
// minutes more at its far end). A SIP user gets 144 steps of 10 minutes of
// ping round trips (min, sum, max, count). Accounts without traffic and
// users without a ping for 24 h are forgotten. Measured (TestMemory, Go
// heap): a day of node buckets with 1,000 accounts 18 MB; 10,000 pinged
// users 31 MB more. Recording does not allocate once the account, kind and
// bucket slot were seen (TestRecordDoesNotAllocate); no goroutine: buckets
// roll when written and read, at the time passed in.
//
// # Cluster
//
// Each node answers its own View (with PeerSources sources instead of
// TopSources, so the merged top ten is exact unless a source ranks below
// the first 100 of every node); Merge sums them.
//
// # Prometheus
//
// The Recorder is a prometheus.Collector of the same events since start:
// calls → sipward_series_calls_total; challenges →
// sipward_series_challenges_total{method}; registrations →
// sipward_series_registrations_total; rejected and register_rejects, and
// rejects by stage → sipward_series_rejects_total{method,stage,status,reason};
// bans → sipward_series_bans_total.
package series

import "time"

// Bucket is the width of one bucket of the per-node series; Span is how far
// back they reach.
const (
	Bucket = 10 * time.Second
	Span   = 24 * time.Hour
)

// DefaultWindow is the counts' window when a query names none.
const DefaultWindow = time.Hour

// Query selects a dashboard view.
type Query struct {
	AccountID int64         // 0: every account (operator); else that account's own traffic only
	Window    time.Duration // the counts' window, 1 minute to Span; 0: DefaultWindow
}

// Totals are counts over a window. A challenge (401/407 asking for
// credentials) is not a refusal and is counted apart.
type Totals struct {
	Calls           int64 `json:"calls"`            // INVITEs passed on to the core
	Rejected        int64 `json:"rejected"`         // INVITEs refused or dropped (challenges excluded)
	Challenges      int64 `json:"challenges"`       // INVITEs and REGISTERs answered 401/407
	Registrations   int64 `json:"registrations"`    // REGISTERs accepted
	RegisterRejects int64 `json:"register_rejects"` // REGISTERs refused or dropped (challenges excluded)
	Bans            int64 `json:"bans"`             // addresses banned (by detection or an operator)
}

// Reject is one kind of refusal: the stage that refused, the SIP status it
// answered (0: dropped) and its reason, with how many requests it refused
// in the window.
type Reject struct {
	Method string `json:"method"` // INVITE | REGISTER
	Stage  string `json:"stage"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// Source is a source address with how many of its requests were refused in
// the window.
type Source struct {
	Source string `json:"source"`
	Count  int64  `json:"count"`
}

// Account is one account's traffic in the window.
type Account struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Calls         int64  `json:"calls"`
	Rejected      int64  `json:"rejected"`
	Challenges    int64  `json:"challenges"`
	Registrations int64  `json:"registrations"`
	// RegisterRejects are the account's REGISTERs refused (challenges
	// excluded).
	RegisterRejects int64 `json:"register_rejects"`
}

// Line is one named series of a Chart: one value per step.
type Line struct {
	Name   string  `json:"name"` // calls | rejected | challenges | registrations | register_rejects | bans
	Values []int64 `json:"values"`
}

// Chart is a set of lines over the same steps: Values[i] counts what
// happened in [Start+i*Step, Start+(i+1)*Step).
type Chart struct {
	Start time.Time     `json:"start"`
	Step  time.Duration `json:"step_ns"`
	Lines []Line        `json:"lines"`
}

// View is what the dashboard shows: live figures now, counts over the
// window, and charts over the last hour and day, of every node (or of one
// account's traffic on every node).
type View struct {
	Now         time.Time     `json:"now"`
	Window      time.Duration `json:"window_ns"`
	AccountID   int64         `json:"account_id,omitempty"`
	ActiveCalls int           `json:"active_calls"`
	Registered  int           `json:"registered"` // devices registered now
	CPS         float64       `json:"cps"`        // calls per second over the last minute
	Totals      Totals        `json:"totals"`
	Rejects     []Reject      `json:"rejects"`     // by count, most first
	TopSources  []Source      `json:"top_sources"` // at most 10, by count, most first
	// OtherSources counts the refusals from sources not in TopSources.
	OtherSources int64     `json:"other_sources"`
	Accounts     []Account `json:"accounts"` // by calls, most first; one row for an account's view
	Hour         Chart     `json:"hour"`     // the last hour in 10-second steps
	Day          Chart     `json:"day"`      // the last 24 hours in 5-minute steps
	// Nodes are the nodes whose series are in the view; MissingNodes the up
	// nodes that did not answer in time (their traffic is missing).
	Nodes        []string `json:"nodes"`
	MissingNodes []string `json:"missing_nodes,omitempty"`
}

// LatencyPoint is a SIP user's NAT-ping round trips in one step: the
// fastest, the mean and the slowest, in milliseconds, and how many pings
// answered. Steps without an answered ping are left out.
type LatencyPoint struct {
	Time  time.Time `json:"time"`
	MinMS float64   `json:"min_ms"`
	AvgMS float64   `json:"avg_ms"`
	MaxMS float64   `json:"max_ms"`
	Count int64     `json:"count"`
}
