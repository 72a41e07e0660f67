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
}

// nodesPage lists the cluster's nodes to the operator, refreshed live.
func (s *Server) nodesPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	if err := operatorOnly(ss); err != nil {
		return err
	}
	d := nodesData{Available: s.nodes != nil, Now: s.now()}
	if s.nodes != nil {
		d.Items = s.nodes.Nodes(d.Now)
		for _, n := range d.Items {
			if n.Status == live.NodeUp {
				d.Up++
			}
		}
	}
	s.render(w, r, http.StatusOK, "nodes.html", page{Title: "Nodes", S: ss, Nav: "nodes", Data: d})
	return nil
}
