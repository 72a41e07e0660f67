package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sipward/sipward/internal/live"
)

// Actions are what this node does for a request that concerns the phones
// registered through it, wherever the request arrived: a SIP MESSAGE to a
// user's devices, and a changed mailbox (message-waiting NOTIFYs to the
// subscriptions and phones it holds).
type Actions interface {
	SendMessage(ctx context.Context, username, from, text string) ([]live.MessageResult, error)
	MailboxChanged(id int64)
}

// SendMessage sends a SIP MESSAGE to every registered device of username,
// through the node each registered through (a device behind NAT is
// reachable only through it): this node's own devices, and each up peer's,
// asked in parallel. It returns ErrNotRegistered when no node holds a
// device of username; the results name the node of each device.
func (v *Views) SendMessage(ctx context.Context, a Actions, username, from, text string) ([]live.MessageResult, error) {
	res, err := a.SendMessage(ctx, username, from, text)
	if err != nil && !errors.Is(err, live.ErrNotRegistered) {
		return nil, err
	}
	for i := range res {
		res[i].Node = v.reg.ID()
	}
	q := url.Values{"username": {username}, "from": {from}, "text": {text}}
	rows, missing := gather[live.MessageResult](ctx, v, "message", q, http.MethodPost)
	for _, id := range missing {
		res = append(res, live.MessageResult{Node: id, Error: "node " + id + " did not answer"})
	}
	res = append(res, rows...)
	if len(res) == 0 {
		return nil, live.ErrNotRegistered
	}
	return res, nil
}

// MailboxChanged tells this node and every up peer, in the background,
// that mailbox id changed, so that each notifies the subscriptions and
// phones it holds.
func (v *Views) MailboxChanged(a Actions, id int64) {
	a.MailboxChanged(id)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), v.timeout)
		defer cancel()
		gather[struct{}](ctx, v, "mwi", url.Values{"id": {strconv.FormatInt(id, 10)}}, http.MethodPost)
	}()
}

// actionHandlers serves the peers' requests for a's actions on PeerPath.
func (v *Views) actionHandlers(mux *http.ServeMux, a Actions) {
	mux.HandleFunc("POST "+PeerPath+"message", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		res, err := a.SendMessage(r.Context(), q.Get("username"), q.Get("from"), q.Get("text"))
		if err != nil && !errors.Is(err, live.ErrNotRegistered) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for i := range res {
			res[i].Node = v.reg.ID()
		}
		writePeer(w, v.reg.ID(), res)
	})
	mux.HandleFunc("POST "+PeerPath+"mwi", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
		if err != nil {
			http.Error(w, "id: not a number", http.StatusBadRequest)
			return
		}
		a.MailboxChanged(id)
		writePeer(w, v.reg.ID(), []struct{}{})
	})
}

// decodePeer reads a peer's answer of rows of T.
func decodePeer[T any](resp *http.Response, p Peer, path string) ([]T, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", path, resp.Status)
	}
	var a peerAnswer[T]
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPeerAnswer)).Decode(&a); err != nil {
		return nil, fmt.Errorf("%s: read the answer: %w", path, err)
	}
	if a.Node != p.ID {
		return nil, fmt.Errorf("%s: answered by node %q, not %q", path, a.Node, p.ID)
	}
	return a.Items, nil
}
