package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
)

// Live is a node's live state as the API shows it: active calls,
// registrations, decisions, and a MESSAGE to a SIP user's devices.
type Live interface {
	Calls(accountID int64) []live.Call
	Registrations(accountID int64, username string) []live.Binding
	Decisions(f live.DecisionFilter) []live.Decision
	SendMessage(ctx context.Context, username, from, text string) ([]live.MessageResult, error)
}

var validUser = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)

// liveScope is the account a live view is limited to: an account token's
// own; for the operator the account (or account_id) parameter, 0 for all.
func liveScope(r *http.Request, c provision.Caller) (int64, error) {
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
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, BadRequest("account", "must be an account ID")
	}
	return id, nil
}

func writeLive(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type liveItems[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
	// MissingNodes are the up nodes whose rows a merged view lacks: they did
	// not answer in time.
	MissingNodes []string `json:"missing_nodes,omitempty"`
}

type messageIn struct {
	Text string `json:"text"`
	From string `json:"from"`
}

type messageSent struct {
	Username string               `json:"username"`
	Devices  []live.MessageResult `json:"devices"`
}

// liveViews are the routes of l, with calls and decisions merged across
// cl's nodes. Account tokens see their own account's.
func liveViews(l Live, cl Cluster, svc *provision.Service) []Extension {
	return []Extension{
		{Method: "POST", Path: "/api/v1/sip-users/{id}/messages", Tag: "sip-users", Out: messageSent{},
			Summary: "Send a SIP MESSAGE (text) to the SIP user's registered devices; each device's answer is returned",
			Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				return sendMessage(l, svc, w, r, c)
			}},
		{Method: "GET", Path: "/api/v1/calls", Tag: "live",
			Summary: "Active calls of every up node (account, endpoint or user, from, to, start, node); missing_nodes names the nodes that did not answer",
			Out:     liveItems[live.Call]{}, Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				aid, err := liveScope(r, c)
				if err != nil {
					return err
				}
				calls, missing := cl.Calls(r.Context(), aid)
				return writeLive(w, liveItems[live.Call]{Items: calls, Total: len(calls), MissingNodes: missing})
			}},
		{Method: "GET", Path: "/api/v1/registrations", Tag: "live", Summary: "Registered contacts of SIP users, with NAT ping latency",
			Out: live.Binding{}, Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				aid, err := liveScope(r, c)
				if err != nil {
					return err
				}
				bs := l.Registrations(aid, r.URL.Query().Get("username"))
				return writeLive(w, liveItems[live.Binding]{Items: bs, Total: len(bs)})
			}},
		{Method: "GET", Path: "/api/v1/decisions", Tag: "live",
			Summary: "Recent INVITE and REGISTER decisions of every up node, newest first: which stage passed or stopped each, and why; missing_nodes names the nodes that did not answer",
			Out:     liveItems[live.Decision]{}, Handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error { return decisions(cl, w, r, c) }},
		nodesView(cl),
	}
}

// sendMessage is POST /sip-users/{id}/messages.
func sendMessage(l Live, svc *provision.Service, w http.ResponseWriter, r *http.Request, c provision.Caller) error {
	uid, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return NotFound("no such SIP user")
	}
	u, err := svc.GetSIPUser(r.Context(), c, uid)
	if err != nil {
		return err
	}
	var in messageIn
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return BadRequest("", "body must be {\"text\": \"…\"}")
	}
	if strings.TrimSpace(in.Text) == "" || len(in.Text) > 1000 {
		return BadRequest("text", "must be 1 to 1000 characters")
	}
	if in.From != "" && !validUser.MatchString(in.From) {
		return BadRequest("from", "only letters, digits and . _ - + are allowed")
	}
	res, err := l.SendMessage(r.Context(), u.Username, in.From, in.Text)
	if errors.Is(err, live.ErrNotRegistered) {
		return Conflict("not_registered", "SIP user "+strconv.Quote(u.Username)+" has no registered device")
	}
	if err != nil {
		return err
	}
	return writeLive(w, messageSent{Username: u.Username, Devices: res})
}

// decisions is GET /decisions.
func decisions(cl Cluster, w http.ResponseWriter, r *http.Request, c provision.Caller) error {
	aid, err := liveScope(r, c)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	f := live.DecisionFilter{Source: q.Get("source"), AccountID: aid, Result: q.Get("result"), CallID: q.Get("call_id"), Limit: limit}
	if f.Since, err = timeParam(q, "since"); err != nil {
		return err
	}
	if f.Until, err = timeParam(q, "until"); err != nil {
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return BadRequest("until", "must be after since")
	}
	ds, missing := cl.Decisions(r.Context(), f)
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
	if ds == nil {
		ds = []live.Decision{} // "items": [], not null, when nothing matches
	}
	return writeLive(w, liveItems[live.Decision]{Items: ds, Total: len(ds), MissingNodes: missing})
}

// timeParam reads an RFC 3339 time from the query (zero when absent).
func timeParam(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, BadRequest(name, "must be an RFC 3339 time such as 2006-01-02T15:04:05Z")
	}
	return t, nil
}
