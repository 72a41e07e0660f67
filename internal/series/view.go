// Package series keeps a node's bounded time series of what its SIP edge
// decided — calls, rejects by stage and reason, challenges, registrations,
// bans, each account's traffic, each SIP user's ping latency — in
// 10-second buckets for 24 hours, and merges the series of every node of a
// cluster into the one picture the dashboard shows.
//
// This file holds the values the dashboard (web UI and REST API) reads; the
// recorder and the merge live beside it.
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
	Accounts    []Account     `json:"accounts"`    // by calls, most first; one row for an account's view
	Hour        Chart         `json:"hour"`        // the last hour in 10-second steps
	Day         Chart         `json:"day"`         // the last 24 hours in 5-minute steps
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
