package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return id, nil
}

// accountOf returns the account of the path's {aid}, if the user may see it.
func (s *Server) accountOf(r *http.Request, ss *session) (store.Account, error) {
	id, err := pathID(r, "aid")
	if err != nil {
		return store.Account{}, err
	}
	return s.svc.GetAccount(r.Context(), ss.Caller, id)
}

// ---- Accounts list (operator).

type accountsData struct {
	Q     string
	Items []store.Account
	Pager pager
	// Live counts of every node, by account ID: calls up now and devices
	// registered now; Live is false without the SIP edge.
	Live              bool
	Calls, Registered map[int64]int
}

// liveByAccount counts the cluster's calls and registered devices by
// account, with one read of each.
func (s *Server) liveByAccount() (calls, registered map[int64]int) {
	if s.live == nil {
		return nil, nil
	}
	calls, registered = map[int64]int{}, map[int64]int{}
	for _, c := range s.live.Calls(0) {
		calls[c.AccountID]++
	}
	for _, b := range s.live.Registrations(0, "") {
		registered[b.AccountID]++
	}
	return calls, registered
}

func (s *Server) accountsPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	if !ss.Caller.Operator {
		http.Redirect(w, r, fmt.Sprintf("/accounts/%d", ss.Caller.AccountID), http.StatusSeeOther)
		return nil
	}
	q := r.URL.Query().Get("q")
	pg := listView(r, listSpec{keys: store.AccountSorts})
	items, total, err := s.svc.ListAccounts(r.Context(), ss.Caller, store.AccountFilter{Name: q, Page: pg.store()})
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, pg.done(total), len(items)) {
		return nil
	}
	d := accountsData{Q: q, Items: items, Pager: pg.done(total), Live: s.live != nil}
	d.Calls, d.Registered = s.liveByAccount()
	s.render(w, r, http.StatusOK, "accounts.html", page{Title: "Accounts", S: ss, Nav: "accounts", Data: d})
	return nil
}

// ---- Account form (new, settings).

type accountFormData struct {
	Form *form
	New  bool
}

func accountValues(a store.Account) url.Values {
	v := url.Values{}
	v.Set("name", a.Name)
	v.Set("channels", strconv.Itoa(a.Channels))
	v.Set("cps", strconv.Itoa(a.CPS))
	if a.BlockSize > 0 {
		v.Set("number_block_start", strconv.FormatInt(a.BlockFrom, 10))
		v.Set("number_block_size", strconv.FormatInt(a.BlockSize, 10))
	}
	return v
}

func accountFields(f *form, operator bool) {
	f.field("name", "Name", "text").req().auto("organization")
	if operator {
		f.field("channels", "Channel capacity", "number").help("Concurrent calls of the whole account; SIP users' channels must fit in it. 0: unlimited.")
		f.field("cps", "Calls per second", "number").help("0: unlimited.")
		f.field("number_block_start", "Number block start", "number").help("First internal number (extension); empty: no block.")
		f.field("number_block_size", "Number block size", "number").help("How many numbers the block holds.")
	}
	f.finish()
}

func (f *form) account(a *store.Account, operator bool) {
	a.Name = f.get("name")
	if operator {
		a.Channels, a.CPS = f.int("channels"), f.int("cps")
		a.BlockFrom, a.BlockSize = f.int64("number_block_start"), f.int64("number_block_size")
	}
}

func (s *Server) accountNewPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	if err := operatorOnly(ss); err != nil {
		return err
	}
	f := newForm(url.Values{"channels": {"0"}, "cps": {"0"}})
	accountFields(f, true)
	s.render(w, r, http.StatusOK, "account_form.html", page{Title: "New account", S: ss, Nav: "accounts", Data: accountFormData{Form: f, New: true}})
	return nil
}

func (s *Server) accountCreate(w http.ResponseWriter, r *http.Request, ss *session) error {
	if err := operatorOnly(ss); err != nil {
		return err
	}
	f := newForm(r.PostForm)
	var in provision.NewAccount
	f.account(&in.Account, true)
	if !f.HasErrors() {
		out, _, err := s.svc.CreateAccount(r.Context(), ss.Caller, &in)
		if err == nil {
			s.redirect(w, r, fmt.Sprintf("/accounts/%d", out.ID), flash{"ok", "Account " + out.Name + " created."})
			return nil
		}
		if !f.refuse(err) {
			return err
		}
	}
	accountFields(f, true)
	s.render(w, r, http.StatusOK, "account_form.html", page{Title: "New account", S: ss, Nav: "accounts", Data: accountFormData{Form: f, New: true}})
	return nil
}

func (s *Server) accountSettingsPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	f := newForm(accountValues(a))
	accountFields(f, ss.Caller.Operator)
	s.render(w, r, http.StatusOK, "account_form.html", page{Title: a.Name + " · Settings", S: ss, Nav: "accounts", Account: &a, Tab: "settings",
		Data: accountFormData{Form: f}})
	return nil
}

func (s *Server) accountSettingsSubmit(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	up := a
	f.account(&up, ss.Caller.Operator)
	if !f.HasErrors() {
		if err := s.svc.UpdateAccount(r.Context(), ss.Caller, &up); err == nil {
			s.redirect(w, r, fmt.Sprintf("/accounts/%d/settings", a.ID), flash{"ok", "Account saved."})
			return nil
		} else if !f.refuse(err) {
			return err
		}
	}
	accountFields(f, ss.Caller.Operator)
	s.render(w, r, http.StatusOK, "account_form.html", page{Title: a.Name + " · Settings", S: ss, Nav: "accounts", Account: &a, Tab: "settings",
		Canonical: fmt.Sprintf("/accounts/%d/settings", a.ID), Data: accountFormData{Form: f}})
	return nil
}

func (s *Server) accountDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	if !s.confirmed(w, r, ss, "Delete account", fmt.Sprintf("/accounts/%d/settings", a.ID), ask("delete-account", a.Name)) {
		return nil
	}
	if err := s.svc.DeleteAccount(r.Context(), ss.Caller, a.ID); err != nil {
		return err
	}
	s.redirect(w, r, "/accounts", flash{"ok", "Account " + a.Name + " deleted, with everything it had."})
	return nil
}

// ---- Channel capacity as a live budget.

type budget struct {
	AccountID int64
	Capacity  int // 0: unlimited
	Allocated int // to SIP users
	InUse     int // by active calls, on every node
	Live      bool
	Remaining int // capacity not allocated to SIP users
	FreeNow   int // capacity not in use now
}

func (s *Server) budgetOf(ctx context.Context, a store.Account) (budget, error) {
	b := budget{AccountID: a.ID, Capacity: a.Channels}
	err := s.svc.Store().View(ctx, func(tx store.Tx) error {
		var err error
		b.Allocated, err = tx.SumSIPUserChannels(ctx, a.ID, 0)
		return err
	})
	if err != nil {
		return b, err
	}
	if s.live != nil {
		n, err := s.live.ChannelsInUse(ctx, a.ID)
		if err == nil {
			b.InUse, b.Live = n, true
		} else {
			s.log.Warn("web: channels in use", "account", a.ID, "err", err)
		}
	}
	if b.Capacity > 0 {
		b.Remaining = max(0, b.Capacity-b.Allocated)
		b.FreeNow = max(0, b.Capacity-b.InUse)
	}
	return b, nil
}

func (s *Server) accountBudget(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	b, err := s.budgetOf(r.Context(), a)
	if err != nil {
		return err
	}
	s.fragment(w, r, "account_ip.html", "budget", b)
	return nil
}

// ---- The account's IP authentication tab (its first page).

type accountIPData struct {
	Budget  budget
	Items   []store.IPEndpoint
	Pager   pager
	Q       string
	Blocked map[int64]*blocked // by endpoint ID
}

func (s *Server) accountEndpoints(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	b, err := s.budgetOf(r.Context(), a)
	if err != nil {
		return err
	}
	q, pg := r.URL.Query().Get("q"), listView(r, listSpec{keys: store.EndpointSorts})
	items, total, err := s.svc.ListEndpoints(r.Context(), ss.Caller, store.EndpointFilter{AccountID: a.ID, Address: q, Page: pg.store()})
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, pg.done(total), len(items)) {
		return nil
	}
	s.render(w, r, http.StatusOK, "account_ip.html", page{Title: a.Name + " · IP authentication", S: ss, Nav: "accounts", Account: &a, Tab: "ip",
		Data: accountIPData{Budget: b, Items: items, Pager: pg.done(total), Q: q, Blocked: s.blocks(r, ss, items)}})
	return nil
}

// ---- SIP users tab.

type usersData struct {
	Q     string
	Items []store.SIPUser
	Pager pager
	Names map[int64]string // account names (global list)
	// Registered counts the devices registered now by SIP user ID; nil:
	// the SIP edge is not known on this node.
	Registered map[int64]int
}

// Devices is a user's Registered cell: "No", "1 device", "2 devices", or
// "–" when the SIP edge is not known.
func (d usersData) Devices(id int64) string {
	if d.Registered == nil {
		return "–"
	}
	return devices(d.Registered[id])
}

func (s *Server) accountUsers(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	q, pg := r.URL.Query().Get("q"), listView(r, listSpec{keys: store.SIPUserSorts})
	items, total, err := s.svc.ListSIPUsers(r.Context(), ss.Caller, store.SIPUserFilter{AccountID: a.ID, Username: q, Page: pg.store()})
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, pg.done(total), len(items)) {
		return nil
	}
	s.render(w, r, http.StatusOK, "account_users.html", page{Title: a.Name + " · SIP users", S: ss, Nav: "accounts", Account: &a, Tab: "users",
		Data: usersData{Q: q, Items: items, Pager: pg.done(total), Registered: s.registeredCounts(r, ss, a.ID)}})
	return nil
}

// ---- CLI patterns tab.

type cliData struct {
	Form  *form
	Items []store.CLIPattern
	Pager pager
	Edit  *rowEdit // the row edited in place, if any
}

func (s *Server) accountCLI(w http.ResponseWriter, r *http.Request, ss *session) error {
	return s.renderCLI(w, r, ss, newForm(nil))
}

func (s *Server) renderCLI(w http.ResponseWriter, r *http.Request, ss *session, f *form) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	return s.renderCLIPage(w, r, ss, a, f, s.cliEdit(r, ss, a))
}

func (s *Server) renderCLIPage(w http.ResponseWriter, r *http.Request, ss *session, a store.Account, f *form, edit *rowEdit) error {
	pg := listView(r, listSpec{keys: store.CLISorts})
	items, total, err := s.svc.ListCLIPatterns(r.Context(), ss.Caller, store.CLIPatternFilter{AccountID: a.ID, Page: pg.store()})
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, pg.done(total), len(items)) {
		return nil
	}
	f.field("pattern", "Pattern", "text").req().ph("442071234567").help("A caller ID number, or an RE2 regex when Regex is ticked.")
	f.field("regex", "Regex", "checkbox")
	f.finish()
	p := page{Title: a.Name + " · CLI patterns", S: ss, Nav: "accounts", Account: &a, Tab: "cli",
		Data: cliData{Form: f, Items: items, Pager: pg.done(total), Edit: edit}}
	if r.Method == http.MethodPost {
		p.Canonical = fmt.Sprintf("/accounts/%d/cli", a.ID)
	}
	s.render(w, r, edit.status(), "account_cli.html", p)
	return nil
}

func (s *Server) cliCreate(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	p := store.CLIPattern{AccountID: a.ID, Pattern: f.get("pattern"), Regex: f.on("regex")}
	if err := s.svc.CreateCLIPattern(r.Context(), ss.Caller, &p); err != nil {
		if !f.refuse(err) {
			return err
		}
		return s.renderCLI(w, r, ss, f)
	}
	s.redirect(w, r, fmt.Sprintf("/accounts/%d/cli", a.ID), flash{"ok", "CLI pattern " + p.Pattern + " added."})
	return nil
}

func (s *Server) cliDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	return deleteOwned(s, w, r, ss, s.svc.GetCLIPattern, s.svc.DeleteCLIPattern, "cli", cliOwner,
		func(p store.CLIPattern, a store.Account) (string, string) {
			return "CLI pattern " + p.Pattern, ask("delete-cli", p.Pattern, a.Name)
		})
}

// owned loads the object {id} of the account {aid} in the URL through get;
// it answers 404 when the object is another account's (ownerOf names its
// account).
func owned[T any](s *Server, r *http.Request, ss *session, get func(context.Context, provision.Caller, int64) (T, error),
	ownerOf func(T) int64) (store.Account, T, int64, error) {
	var zero T
	a, err := s.accountOf(r, ss)
	if err != nil {
		return a, zero, 0, err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return a, zero, 0, err
	}
	v, err := get(r.Context(), ss.Caller, id)
	if err != nil {
		return a, zero, 0, err
	}
	if ownerOf(v) != a.ID {
		return a, zero, 0, errNotFound
	}
	return a, v, id, nil
}

// cliOwner and didOwner name the account of a CLI pattern and of a DID.
func cliOwner(p store.CLIPattern) int64 { return p.AccountID }
func didOwner(d store.DID) int64        { return d.AccountID }

// deleteOwned deletes an object of the account in the URL (404 when it is
// another account's), once confirmed, and goes back to that account's tab
// with a flash. ownerOf names the object's account; describe gives its name
// and the question that confirms its deletion.
func deleteOwned[T any](s *Server, w http.ResponseWriter, r *http.Request, ss *session,
	get func(context.Context, provision.Caller, int64) (T, error),
	del func(context.Context, provision.Caller, int64) error,
	tab string, ownerOf func(T) int64, describe func(T, store.Account) (name, question string)) error {
	a, v, id, err := owned(s, r, ss, get, ownerOf)
	if err != nil {
		return err
	}
	name, question := describe(v, a)
	back := fmt.Sprintf("/accounts/%d/%s", a.ID, tab)
	if !s.confirmed(w, r, ss, "Delete", back, question) {
		return nil
	}
	if err := del(r.Context(), ss.Caller, id); err != nil {
		return err
	}
	s.redirect(w, r, back, flash{"ok", name + " deleted."})
	return nil
}

// ---- DIDs tab.

type didRow struct {
	store.DID
	Username string
}

type didsData struct {
	Form  *form
	Items []didRow
	Pager pager
	Q     string
	Edit  *rowEdit // the row edited in place, if any
}

func (s *Server) accountDIDs(w http.ResponseWriter, r *http.Request, ss *session) error {
	return s.renderDIDs(w, r, ss, newForm(nil))
}

func (s *Server) renderDIDs(w http.ResponseWriter, r *http.Request, ss *session, f *form) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	return s.renderDIDPage(w, r, ss, a, f, nil)
}

// renderDIDPage shows the DIDs tab; edit is the row being edited (nil:
// the row of ?edit=, if any).
func (s *Server) renderDIDPage(w http.ResponseWriter, r *http.Request, ss *session, a store.Account, f *form, edit *rowEdit) error {
	q, pg := r.URL.Query().Get("q"), listView(r, listSpec{keys: store.DIDSorts})
	items, total, err := s.svc.ListDIDs(r.Context(), ss.Caller, store.DIDFilter{AccountID: a.ID, Number: q, Page: pg.store()})
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, pg.done(total), len(items)) {
		return nil
	}
	users, err := s.accountUsernames(r, ss, a)
	if err != nil {
		return err
	}
	rows := make([]didRow, len(items))
	for i, d := range items {
		rows[i].DID = d
		if d.SIPUserID != nil {
			if u, err := s.svc.GetSIPUser(r.Context(), ss.Caller, *d.SIPUserID); err == nil {
				rows[i].Username = u.Username
			}
		}
	}
	if edit == nil {
		edit = s.didEdit(r, ss, a, rows, users)
	}
	f.field("number", "Number (E.164)", "text").req().ph("+442071234567")
	userPicker(f, users)
	f.finish()
	p := page{Title: a.Name + " · DIDs", S: ss, Nav: "accounts", Account: &a, Tab: "dids",
		Data: didsData{Form: f, Items: rows, Pager: pg.done(total), Q: q, Edit: edit}}
	if r.Method == http.MethodPost {
		p.Canonical = fmt.Sprintf("/accounts/%d/dids", a.ID)
	}
	s.render(w, r, edit.status(), "account_dids.html", p)
	return nil
}

// userByName finds an account's SIP user by exact username.
func (s *Server) userByName(ctx context.Context, c provision.Caller, accountID int64, name string) (store.SIPUser, bool, error) {
	items, _, err := s.svc.ListSIPUsers(ctx, c, store.SIPUserFilter{AccountID: accountID, Username: name, Page: store.Page{Limit: 1000}})
	if err != nil {
		return store.SIPUser{}, false, err
	}
	for _, u := range items {
		if u.Username == name {
			return u, true, nil
		}
	}
	return store.SIPUser{}, false, nil
}

func (s *Server) didCreate(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	d := store.DID{AccountID: a.ID, Number: f.get("number")}
	if err := s.resolveDIDUser(r, ss, a, f, &d); err != nil {
		return err
	}
	if f.HasErrors() {
		return s.renderDIDs(w, r, ss, f)
	}
	if err := s.svc.CreateDID(r.Context(), ss.Caller, &d); err != nil {
		if !f.refuse(err) {
			return err
		}
		f.renameErr("sip_user_id", "sip_user")
		return s.renderDIDs(w, r, ss, f)
	}
	s.redirect(w, r, fmt.Sprintf("/accounts/%d/dids", a.ID), flash{"ok", "DID " + d.Number + " added."})
	return nil
}

func (s *Server) didDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	return deleteOwned(s, w, r, ss, s.svc.GetDID, s.svc.DeleteDID, "dids", didOwner,
		func(d store.DID, a store.Account) (string, string) {
			return "DID " + d.Number, ask("delete-did", d.Number, a.Name)
		})
}
