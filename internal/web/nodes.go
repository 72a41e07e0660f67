package web

import (
	"net/http"
	"time"

	"github.com/sipward/sipward/internal/live"
)

// Nodes lists the nodes of the cluster this one belongs to (package nodes).
type Nodes interface {
	// Nodes lists the cluster's nodes, up and down, at now.
	Nodes(now time.Time) []live.Node
}

type nodesData struct {
	Available bool
	Items     []live.Node
	Up        int
	Now       time.Time
	Pager     pager
	Self      string // this page's URL, for the live refresh
}

var nodeSorts = sorter[live.Node]{
	"node":          byText(func(n live.Node) string { return n.ID }),
	"address":       byText(func(n live.Node) string { return n.Address }),
	"version":       byText(func(n live.Node) string { return n.Version }),
	"started":       byTime(func(n live.Node) time.Time { return n.StartedAt }),
	"last_seen":     byTime(func(n live.Node) time.Time { return n.LastSeenAt }),
	"status":        byText(func(n live.Node) string { return n.Status }),
	"calls":         byNum(func(n live.Node) int { return n.ActiveCalls }),
	"registrations": byNum(func(n live.Node) int { return n.Registrations }),
	"load":          byNum(func(n live.Node) float64 { return n.Load }),
}

// nodesPage lists the cluster's nodes to the operator, refreshed live.
func (s *Server) nodesPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	if err := operatorOnly(ss); err != nil {
		return err
	}
	d := nodesData{Available: s.nodes != nil, Now: s.now(), Self: r.URL.RequestURI()}
	if s.nodes != nil {
		all := s.nodes.Nodes(d.Now)
		for _, n := range all {
			if n.Status == live.NodeUp {
				d.Up++
			}
		}
		d.Items, d.Pager = sortPage(r, all, nodeSorts, "", false)
	}
	s.render(w, r, http.StatusOK, "nodes.html", page{Title: "Nodes", S: ss, Nav: "nodes", Data: d})
	return nil
}
