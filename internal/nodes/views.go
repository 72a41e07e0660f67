package nodes

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sipward/sipward/internal/live"
)

// Local is this node's own live state.
type Local interface {
	Calls(accountID int64) []live.Call
	Decisions(f live.DecisionFilter) []live.Decision
}

// Views are the live views of the whole cluster: this node's rows and every
// up peer's.
type Views struct {
	reg     *Registry
	local   Local
	signer  signer
	client  *http.Client
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
	seen    seenRequests // signed POSTs served, for refusing replays
	series  Series       // this node's dashboard series; nil: none
}

// PeerTimeout is how long a merged view waits for the peers.
const PeerTimeout = 2 * time.Second

// maxPeerAnswer bounds a peer's answer (a decision is under 2 KB; a call
// well under 1 KB).
const maxPeerAnswer = 64 << 20

// NewViews returns the merged views of reg's cluster, with local as this
// node's rows; secret is the cluster's shared secret (the store's nonce
// secret) that node-to-node requests are signed under.
func NewViews(reg *Registry, local Local, secret []byte, log *slog.Logger) (*Views, error) {
	s, err := newSigner(secret, reg.ID())
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Views{reg: reg, local: local, signer: s, client: &http.Client{}, timeout: PeerTimeout, log: log, now: time.Now}, nil
}

// Nodes lists the cluster's nodes at now (Registry.Nodes).
func (v *Views) Nodes(now time.Time) []live.Node { return v.reg.Nodes(now) }

// Calls returns the active calls of every up node (of one account, unless
// accountID is 0), oldest first, and the IDs of the up peers that did not
// answer in time.
func (v *Views) Calls(ctx context.Context, accountID int64) ([]live.Call, []string) {
	rows, missing := gather[live.Call](ctx, v, "calls", callsQuery(accountID), http.MethodGet)
	rows = append(rows, v.localCalls(accountID)...)
	slices.SortFunc(rows, func(a, b live.Call) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	return rows, missing
}

// Decisions returns the decisions of every up node that f selects, newest
// first, at most f.Limit of them (1 to 1000; 100 when out of range, as a
// node's own log), and the IDs of the up peers that did not answer in time.
func (v *Views) Decisions(ctx context.Context, f live.DecisionFilter) ([]live.Decision, []string) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	rows, missing := gather[live.Decision](ctx, v, "decisions", decisionsQuery(f), http.MethodGet)
	rows = append(rows, v.localDecisions(f)...)
	slices.SortFunc(rows, func(a, b live.Decision) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Node, b.Node), cmp.Compare(b.Seq, a.Seq))
	})
	return rows[:min(len(rows), f.Limit)], missing
}

func (v *Views) localCalls(accountID int64) []live.Call {
	rows := v.local.Calls(accountID)
	for i := range rows {
		rows[i].Node = v.reg.ID()
	}
	return rows
}

func (v *Views) localDecisions(f live.DecisionFilter) []live.Decision {
	rows := v.local.Decisions(f)
	for i := range rows {
		rows[i].Node = v.reg.ID()
	}
	return rows
}

func callsQuery(accountID int64) url.Values {
	q := url.Values{}
	if accountID != 0 {
		q.Set("account", strconv.FormatInt(accountID, 10))
	}
	return q
}

func decisionsQuery(f live.DecisionFilter) url.Values {
	q := callsQuery(f.AccountID)
	for k, s := range map[string]string{"source": f.Source, "result": f.Result, "call_id": f.CallID} {
		if s != "" {
			q.Set(k, s)
		}
	}
	for k, t := range map[string]time.Time{"since": f.Since, "until": f.Until} {
		if !t.IsZero() {
			q.Set(k, t.UTC().Format(time.RFC3339Nano))
		}
	}
	q.Set("limit", strconv.Itoa(f.Limit))
	return q
}

// decisionFilter reads what decisionsQuery wrote.
func decisionFilter(q url.Values) (live.DecisionFilter, error) {
	aid, _ := strconv.ParseInt(q.Get("account"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	f := live.DecisionFilter{AccountID: aid, Source: q.Get("source"), Result: q.Get("result"), CallID: q.Get("call_id"), Limit: limit}
	for k, t := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(k); v != "" {
			var err error
			if *t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return f, fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	return f, nil
}

// peerAnswer is what a peer answers on PeerPath.
type peerAnswer[T any] struct {
	Node  string `json:"node"`
	Items []T    `json:"items"`
}

// gather asks every up peer for its rows of kind (with method: GET reads,
// POST asks for an action), in parallel, and returns those that answered
// within the timeout and the IDs of those that did not.
func gather[T any](ctx context.Context, v *Views, kind string, q url.Values, method string) ([]T, []string) {
	peers := v.reg.Peers(v.now())
	if len(peers) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	type answer struct {
		id   string
		rows []T
		err  error
	}
	ch := make(chan answer, len(peers))
	for _, p := range peers {
		go func() {
			rows, err := fetch[T](ctx, v, p, kind, q, method)
			ch <- answer{p.ID, rows, err}
		}()
	}
	var rows []T
	var missing []string
	for range peers {
		a := <-ch
		if a.err != nil {
			v.log.Warn("nodes: a peer left out of a merged view", "node", a.id, "view", kind, "err", a.err)
			missing = append(missing, a.id)
			continue
		}
		rows = append(rows, a.rows...)
	}
	slices.Sort(missing)
	return rows, missing
}

// fetch asks peer p for its rows of kind. The parameters travel in the
// URL, which the signature covers.
func fetch[T any](ctx context.Context, v *Views, p Peer, kind string, q url.Values, method string) ([]T, error) {
	if method == http.MethodPost { // unique, so a copy of it is refused (replays)
		q = maps.Clone(q)
		q.Set("n", rand.Text())
	}
	u := url.URL{Scheme: "http", Host: p.HTTP, Path: PeerPath + kind, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	v.signer.sign(req, v.now())
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return decodePeer[T](resp, p, method+" "+u.Path)
}

// Handler serves this node's own rows, and a's actions, to its peers on
// PeerPath; requests must be signed by a node of the cluster.
func (v *Views) Handler(a Actions) http.Handler {
	mux := http.NewServeMux()
	v.actionHandlers(mux, a)
	v.seriesHandlers(mux)
	mux.HandleFunc("GET "+PeerPath+"calls", func(w http.ResponseWriter, r *http.Request) {
		aid, _ := strconv.ParseInt(r.URL.Query().Get("account"), 10, 64)
		writePeer(w, v.reg.ID(), v.localCalls(aid))
	})
	mux.HandleFunc("GET "+PeerPath+"decisions", func(w http.ResponseWriter, r *http.Request) {
		f, err := decisionFilter(r.URL.Query())
		if err != nil {
			http.Error(w, "decisions: "+err.Error(), http.StatusBadRequest)
			return
		}
		writePeer(w, v.reg.ID(), v.localDecisions(f))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := v.now()
		_, err := v.signer.verify(r, now)
		if err == nil && r.Method == http.MethodPost && !v.seen.first(r.Header.Get(authHeader), now) {
			err = errors.New("a copy of a request already served")
		}
		if err != nil {
			v.log.Debug("nodes: node-to-node request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
			http.Error(w, "node-to-node request refused: "+err.Error(), http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writePeer[T any](w http.ResponseWriter, id string, rows []T) {
	if rows == nil {
		rows = []T{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(peerAnswer[T]{Node: id, Items: rows})
}

// seenRequests remembers the signatures of the requests served while they
// are valid (maxSkew either way), so that a copy is refused.
type seenRequests struct {
	mu sync.Mutex
	m  map[string]time.Time // signature → when it stops being valid
}

// first reports whether sig is seen for the first time at now, and
// remembers it.
func (s *seenRequests) first(sig string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]time.Time{}
	}
	if len(s.m) > 10_000 {
		for k, until := range s.m {
			if now.After(until) {
				delete(s.m, k)
			}
		}
	}
	if until, ok := s.m[sig]; ok && !now.After(until) {
		return false
	}
	s.m[sig] = now.Add(2 * maxSkew)
	return true
}
