package registrar

// A REGISTER (RFC 3261 §10.3), in three steps: parse what it asks
// (parseRegister), apply it to the user's bindings (apply), and answer with
// the bindings now in force (reply). Each step's refusal is a Result.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// stage is the registrar's name in traces and Results.
const stage = "registrar"

// Name returns "registrar": the REGISTER chain's terminal handler.
func (g *Registrar) Name() string { return stage }

// registration is what a REGISTER asks for.
type registration struct {
	aor      string
	changes  []change // one per Contact but "*"
	wildcard bool     // Contact: * (with Expires: 0): remove every binding
	callID   string
	cseq     uint32
	agent    string // User-Agent
}

// change is one Contact of a REGISTER: bind it for expires seconds, or
// remove it (0).
type change struct {
	contact string
	expires int
}

// ServeSIP handles an authenticated REGISTER: the REGISTER chain's
// terminal. It answers 200 with the user's bindings, or refuses (403 for a
// request not authenticated as the user it registers, 400, 423); an error
// is a store failure when writing through (FlushInterval < 0).
func (g *Registrar) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	reg, res, ok := g.parseRegister(r)
	if !ok {
		return res, nil
	}
	current, saves, deletes, res, ok := g.apply(r, reg)
	if !ok {
		return res, nil
	}
	for _, c := range deletes {
		g.queue(reg.aor, c, nil)
	}
	for i := range saves {
		g.queue(reg.aor, saves[i].Contact, &saves[i])
	}
	if g.cfg.FlushInterval < 0 {
		if err := g.flush(ctx); err != nil {
			return pipeline.Result{}, fmt.Errorf("registrar: save binding: %w", err)
		}
	}
	g.touch(reg.aor)
	g.announce(r, current)
	r.Trace.Pass(stage)
	return okReply(current, r.Now), nil
}

// announce tells OnRegistered how long a stream connection carries the
// bindings r left from its source.
func (g *Registrar) announce(r *pipeline.Request, current []Binding) {
	if g.cfg.OnRegistered == nil || r.Transport == pipeline.UDP {
		return
	}
	src := r.Source.String()
	var until time.Time
	for _, b := range current {
		if b.Source == src && b.Expires.After(until) {
			until = b.Expires
		}
	}
	if !until.IsZero() {
		g.cfg.OnRegistered(r.Source, r.Transport, until)
	}
}

// parseRegister reads r as a REGISTER of r's user; ok false with the
// refusal.
func (g *Registrar) parseRegister(r *pipeline.Request) (reg registration, res pipeline.Result, ok bool) {
	req := r.Msg
	if r.Auth.Method != pipeline.AuthDigest {
		return reg, pipeline.Reject(stage, 403, "Forbidden", "REGISTER needs SIP user credentials"), false
	}
	reg.aor = req.To().Address.User
	if reg.aor != r.Auth.Username {
		return reg, pipeline.Reject(stage, 403, "Forbidden", fmt.Sprintf("user %q may not register %q", r.Auth.Username, reg.aor)), false
	}
	defExp := -1
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			return reg, pipeline.Reject(stage, 400, "Bad Request", "malformed Expires"), false
		}
		defExp = n
	}
	contacts := req.GetHeaders("Contact")
	reg.callID, reg.cseq = req.CallID().Value(), req.CSeq().SeqNo
	for _, h := range contacts {
		ch, isContact := h.(*sip.ContactHeader)
		if !isContact {
			continue
		}
		if ch.Address.Wildcard {
			reg.wildcard = true
			continue
		}
		c, res, ok := g.contactChange(ch, defExp)
		if !ok {
			return reg, res, false
		}
		reg.changes = append(reg.changes, c)
	}
	if reg.wildcard && (len(contacts) != 1 || defExp != 0) {
		return reg, pipeline.Reject(stage, 400, "Bad Request", "Contact: * needs Expires: 0 and no other contact"), false
	}
	if h := req.GetHeader("User-Agent"); h != nil {
		reg.agent = h.Value()
	}
	return reg, res, true
}

// contactChange reads one Contact: its expires parameter, else the
// request's Expires (defExp, -1 when none), else DefaultExpires; below
// MinExpires is refused with 423, above MaxExpires cut to it.
func (g *Registrar) contactChange(ch *sip.ContactHeader, defExp int) (change, pipeline.Result, bool) {
	exp := defExp
	if v, ok := ch.Params.Get("expires"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return change{}, pipeline.Reject(stage, 400, "Bad Request", "malformed contact expires"), false
		}
		exp = n
	}
	if exp < 0 {
		exp = int(g.cfg.DefaultExpires / time.Second)
	}
	if exp > 0 && time.Duration(exp)*time.Second < g.cfg.MinExpires {
		min := strconv.Itoa(int(g.cfg.MinExpires / time.Second))
		return change{}, pipeline.Reject(stage, 423, "Interval Too Brief", "expires "+strconv.Itoa(exp)+" below "+min,
			sip.NewHeader("Min-Expires", min)), false
	}
	if max := int(g.cfg.MaxExpires / time.Second); exp > max {
		exp = max
	}
	return change{contact: ch.Address.String(), expires: exp}, pipeline.Result{}, true
}

// outOfOrder refuses a REGISTER whose Call-ID matches a binding's but whose
// CSeq is not above it (RFC 3261 §10.3 steps 6 and 7).
var outOfOrder = pipeline.Reject(stage, 400, "Bad Request", "out-of-order REGISTER: CSeq not above the binding's")

// apply changes the user's bindings as reg asks, all or nothing. It returns
// the bindings in force after, and what the store must save and delete.
func (g *Registrar) apply(r *pipeline.Request, reg registration) (current, saves []Binding, deletes []string, res pipeline.Result, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	list := slices.Clone(g.byUser[reg.aor]) // a refused update leaves the bindings as they were
	if reg.wildcard {
		// RFC 3261 §10.3 step 6: a binding of the same Call-ID goes only
		// for a higher CSeq; otherwise the whole update is refused.
		for _, b := range list {
			if b.CallID == reg.callID && reg.cseq <= b.CSeq {
				return nil, nil, nil, outOfOrder, false
			}
			deletes = append(deletes, b.Contact)
		}
		list = nil
	}
	for _, c := range reg.changes {
		var save *Binding
		var gone []string
		if list, save, gone, ok = g.change(r, reg, c, list); !ok {
			return nil, nil, nil, outOfOrder, false
		}
		deletes = append(deletes, gone...)
		if save != nil {
			saves = append(saves, *save)
		}
	}
	saves, deletes = settle(list, saves, deletes)
	g.count += len(list) - len(g.byUser[reg.aor])
	if len(list) == 0 {
		delete(g.byUser, reg.aor)
	} else {
		g.byUser[reg.aor] = list
	}
	current = make([]Binding, 0, len(list))
	for _, b := range list {
		current = append(current, *b)
	}
	return current, saves, deletes, res, true
}

// change applies one Contact to list (the user's bindings; g.mu held) and
// returns the new list, the binding to save (nil: none, or a refresh the
// store may skip) and the contacts removed; ok false for an out-of-order
// REGISTER (RFC 3261 §10.3 step 7: an old or repeated REGISTER of the same
// Call-ID aborts the update).
func (g *Registrar) change(r *pipeline.Request, reg registration, c change, list []*Binding) ([]*Binding, *Binding, []string, bool) {
	idx := -1
	for i, b := range list {
		if b.Contact == c.contact {
			idx = i
		}
	}
	if idx >= 0 && list[idx].CallID == reg.callID && reg.cseq <= list[idx].CSeq {
		return list, nil, nil, false
	}
	if c.expires == 0 {
		if idx < 0 {
			return list, nil, nil, true
		}
		return slices.Delete(list, idx, idx+1), nil, []string{c.contact}, true
	}
	now := r.Now
	b := &Binding{Username: reg.aor, SIPUserID: r.Auth.SIPUserID, AccountID: r.Auth.AccountID, Contact: c.contact,
		Source: r.Source.String(), Transport: r.Transport, Expires: now.Add(time.Duration(c.expires) * time.Second),
		Registered: now, CallID: reg.callID, CSeq: reg.cseq, UserAgent: reg.agent, Node: g.cfg.NodeID, NodeAddr: g.cfg.NodeAddr}
	if idx >= 0 {
		old := list[idx]
		b.LatencyMS, b.LastPing = old.LatencyMS, old.LastPing
		list[idx] = b
		if g.lazyRefresh(old, b, now) {
			return list, nil, nil, true
		}
		return list, b, nil, true
	}
	var gone []string
	if len(list) >= g.cfg.MaxContacts {
		oldest := 0
		for i := range list {
			if list[i].Registered.Before(list[oldest].Registered) {
				oldest = i
			}
		}
		gone = append(gone, list[oldest].Contact)
		list = slices.Delete(list, oldest, oldest+1)
	}
	return append(list, b), b, gone, true
}

// settle keeps, of what one REGISTER changed, what the store needs for the
// final state: saves of what is bound now, deletes of what is not (a
// contact saved and then evicted in the same request is not saved).
func settle(list []*Binding, saves []Binding, deletes []string) ([]Binding, []string) {
	final := make(map[string]bool, len(list))
	for _, b := range list {
		final[b.Contact] = true
	}
	keptSaves := saves[:0]
	for _, b := range saves {
		if final[b.Contact] {
			keptSaves = append(keptSaves, b)
		}
	}
	keptDeletes := deletes[:0]
	for _, c := range deletes {
		if !final[c] {
			keptDeletes = append(keptDeletes, c)
		}
	}
	return keptSaves, keptDeletes
}

// okReply is the 200 of a REGISTER: every binding in force with its
// remaining time, and the Date.
func okReply(current []Binding, now time.Time) pipeline.Result {
	hdrs := make([]sip.Header, 0, len(current)+1)
	for _, b := range current {
		rem := int(b.Expires.Sub(now) / time.Second)
		hdrs = append(hdrs, sip.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(rem)))
	}
	hdrs = append(hdrs, sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	return pipeline.Reply(stage, 200, "OK", fmt.Sprintf("%d contact(s) registered", len(current)), hdrs...)
}
