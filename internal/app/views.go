package app

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/sipward/sipward/internal/api"
	"github.com/sipward/sipward/internal/edge"
	"github.com/sipward/sipward/internal/provision"
)

var validUser = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)

// liveViews are the API routes that show the SIP edge's live state: active
// calls, registrations and decisions. Account tokens see their own account's.
func liveViews(s *sipSide) []api.Extension {
	scope := func(r *http.Request, c provision.Caller) (int64, error) {
		if !c.Operator {
			return c.AccountID, nil
		}
		v := r.URL.Query().Get("account")
		if v == "" {
			v = r.URL.Query().Get("account_id")
		}
		if v == "" {
			return 0, nil
		}
		return strconv.ParseInt(v, 10, 64)
	}
	write := func(w http.ResponseWriter, v any) error {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	type items[T any] struct {
		Items []T `json:"items"`
		Total int `json:"total"`
	}
	type message struct {
		Text string `json:"text"`
		From string `json:"from"`
	}
	type sent struct {
		Username string               `json:"username"`
		Devices  []edge.MessageResult `json:"devices"`
	}
	return []api.Extension{
		{Method: "POST", Path: "/api/v1/sip-users/{id}/messages", Tag: "sip-users", Out: sent{},
			Summary: "Send a SIP MESSAGE (text) to the SIP user's registered devices; each device's answer is returned",
			Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				uid, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
				if err != nil {
					return api.NotFound("no such SIP user")
				}
				u, err := s.svc.GetSIPUser(r.Context(), c, uid)
				if err != nil {
					return err
				}
				var in message
				if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
					return api.BadRequest("", "body must be {\"text\": \"…\"}")
				}
				if strings.TrimSpace(in.Text) == "" || len(in.Text) > 1000 {
					return api.BadRequest("text", "must be 1 to 1000 characters")
				}
				if in.From != "" && !validUser.MatchString(in.From) {
					return api.BadRequest("from", "only letters, digits and . _ - + are allowed")
				}
				res, err := s.edge.SendMessage(r.Context(), u.Username, in.From, in.Text)
				if errors.Is(err, edge.ErrNotRegistered) {
					return api.Conflict("not_registered", "SIP user "+strconv.Quote(u.Username)+" has no registered device")
				}
				if err != nil {
					return err
				}
				return write(w, sent{Username: u.Username, Devices: res})
			}},
		{Method: "GET", Path: "/api/v1/calls", Tag: "live", Summary: "Active calls (account, endpoint or user, from, to, start)",
			Out: edge.CallView{}, Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				aid, err := scope(r, c)
				if err != nil {
					return api.BadRequest("account", "must be an account ID")
				}
				calls := s.edge.Calls(aid)
				return write(w, items[edge.CallView]{Items: calls, Total: len(calls)})
			}},
		{Method: "GET", Path: "/api/v1/registrations", Tag: "live", Summary: "Registered contacts of SIP users, with NAT ping latency",
			Out: edge.Binding{}, Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				aid, err := scope(r, c)
				if err != nil {
					return api.BadRequest("account", "must be an account ID")
				}
				bs := s.registrar.List(aid, r.URL.Query().Get("username"))
				return write(w, items[edge.Binding]{Items: bs, Total: len(bs)})
			}},
		{Method: "GET", Path: "/api/v1/decisions", Tag: "live", Summary: "Recent INVITE and REGISTER decisions: which stage passed or stopped each, and why",
			Out: edge.Decision{}, Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				aid, err := scope(r, c)
				if err != nil {
					return api.BadRequest("account", "must be an account ID")
				}
				q := r.URL.Query()
				limit, _ := strconv.Atoi(q.Get("limit"))
				ds := s.edge.Decisions(edge.DecisionFilter{Source: q.Get("source"), AccountID: aid, Result: q.Get("result"),
					CallID: q.Get("call_id"), Limit: limit})
				if !c.Operator {
					// An account sees only decisions made for it (never other customers' sources).
					kept := ds[:0]
					for _, d := range ds {
						if d.AccountID == c.AccountID {
							kept = append(kept, d)
						}
					}
					ds = kept
				}
				return write(w, items[edge.Decision]{Items: ds, Total: len(ds)})
			}},
	}
}
