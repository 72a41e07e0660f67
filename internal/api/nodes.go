package api

import (
	"context"
	"net/http"
	"time"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
)

// Cluster is the nodes that share this node's live state (package nodes),
// and the merged views of their calls and decisions. The merged views name
// the up nodes that did not answer in time (missing).
type Cluster interface {
	// Nodes lists the cluster's nodes, up and down, at now.
	Nodes(now time.Time) []live.Node
	// Calls lists the active calls of every up node; accountID 0: every account's.
	Calls(ctx context.Context, accountID int64) (calls []live.Call, missing []string)
	// Decisions lists the decisions of every up node that f selects, newest first.
	Decisions(ctx context.Context, f live.DecisionFilter) (ds []live.Decision, missing []string)
}

// local is a Cluster of this node alone, when no Cluster is configured.
type local struct{ l Live }

func (c local) Nodes(time.Time) []live.Node { return []live.Node{} }

func (c local) Calls(_ context.Context, accountID int64) ([]live.Call, []string) {
	return c.l.Calls(accountID), nil
}

func (c local) Decisions(_ context.Context, f live.DecisionFilter) ([]live.Decision, []string) {
	return c.l.Decisions(f), nil
}

// nodesView is GET /nodes (operator only).
func nodesView(cl Cluster) Extension {
	return Extension{Method: "GET", Path: "/api/v1/nodes", Tag: "live", Operator: true, Out: liveItems[live.Node]{},
		Summary: "The nodes of the cluster (sharing the store and Redis): address, version, start, last heartbeat, " +
			"status (down when its heartbeats stopped more than 15 s ago, or it shut down), active calls, " +
			"registrations, and load (the process's CPU use over its last 5 s heartbeat interval as a fraction of its cores)",
		Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
			ns := cl.Nodes(time.Now())
			return writeLive(w, liveItems[live.Node]{Items: ns, Total: len(ns)})
		}}
}
