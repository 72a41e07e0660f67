package web

import (
	"net/http"

	"github.com/sipward/sipward/internal/store"
)

// blocked is an active firewall ban that covers an IP endpoint's address,
// as the endpoint lists and page show it: "Blocked", the ban's reason and
// expiry, and (for the operator) an Unblock button that lifts the ban and
// comes back to Back.
type blocked struct {
	store.Ban
	Operator bool
	CSRF     string
	Back     string
}

// blocks returns the bans covering endpoints, by endpoint ID, read once for
// the whole page. An error is logged and shows nothing as blocked: the list
// is still worth showing.
func (s *Server) blocks(r *http.Request, ss *session, endpoints []store.IPEndpoint) map[int64]*blocked {
	bans, err := s.svc.EndpointBans(r.Context(), ss.Caller, endpoints, s.now())
	if err != nil {
		s.log.Warn("web: bans of endpoints", "err", err)
		return nil
	}
	out := make(map[int64]*blocked, len(bans))
	for id, b := range bans {
		out[id] = &blocked{Ban: b, Operator: ss.Caller.Operator, CSRF: ss.CSRF, Back: r.URL.RequestURI()}
	}
	return out
}
