package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sipward/sipward/internal/store"
)

// rowEdit is a list row edited in place (rewrite rules, CLI patterns,
// DIDs): an Edit button turns the row into this form (htmx swaps the row;
// without script, ?edit=ID renders the list with that row as the form).
// Save posts to Action; a refused change shows its errors in the row.
type rowEdit struct {
	ID     int64
	RowID  string // the row's element ID: "cli-3"
	Cols   int    // the table's columns, for the form's cell
	Action string
	Cancel string // the list without ?edit
	Label  string // what is edited: "CLI pattern 4420…"
	Form   *form
	Fields []*field
	CSRF   string
}

// editLink is a row's Edit button.
type editLink struct{ Href, Row, Label string }

// editID is the row asked for by ?edit=, or 0.
func editID(r *http.Request) int64 {
	id, err := strconv.ParseInt(r.URL.Query().Get("edit"), 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// build makes the row's fields with IDs of their own ("e-f-pattern"), so
// they do not clash with the add form's on the same page.
func (e *rowEdit) build(fields ...*field) *rowEdit {
	for _, fl := range fields {
		fl.ID = "e-" + fl.ID
	}
	e.Fields = fields
	e.Form.finish()
	return e
}

// status is 422 when the row holds a refused change.
func (e *rowEdit) status() int {
	if e != nil && e.Form.HasErrors() {
		return http.StatusUnprocessableEntity
	}
	return http.StatusOK
}

// ---- CLI patterns.

func cliValues(p store.CLIPattern) url.Values {
	v := url.Values{"pattern": {p.Pattern}}
	if p.Regex {
		v.Set("regex", "on")
	}
	return v
}

func cliRow(a store.Account, id int64, f *form, csrf string) *rowEdit {
	e := &rowEdit{ID: id, RowID: fmt.Sprintf("cli-%d", id), Cols: 3, Action: fmt.Sprintf("/accounts/%d/cli/%d", a.ID, id),
		Cancel: fmt.Sprintf("/accounts/%d/cli", a.ID), Label: "CLI pattern " + f.Value("pattern"), Form: f, CSRF: csrf}
	return e.build(f.field("pattern", "Pattern", "text").req(), f.field("regex", "Regex", "checkbox"))
}

// cliEdit is the row of ?edit=, read from the store.
func (s *Server) cliEdit(r *http.Request, ss *session, a store.Account) *rowEdit {
	id := editID(r)
	if id == 0 {
		return nil
	}
	p, err := s.svc.GetCLIPattern(r.Context(), ss.Caller, id)
	if err != nil || p.AccountID != a.ID {
		return nil
	}
	return cliRow(a, id, newForm(cliValues(p)), ss.CSRF)
}

func (s *Server) cliUpdate(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, p, id, err := owned(s, r, ss, s.svc.GetCLIPattern, cliOwner)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	p.Pattern, p.Regex = f.get("pattern"), f.on("regex")
	if err := s.svc.UpdateCLIPattern(r.Context(), ss.Caller, &p); err != nil {
		if !f.refuse(err) {
			return err
		}
		return s.renderCLIPage(w, r, ss, a, newForm(nil), cliRow(a, id, f, ss.CSRF))
	}
	s.redirect(w, r, fmt.Sprintf("/accounts/%d/cli#cli-%d", a.ID, id), flash{"ok", "CLI pattern " + p.Pattern + " saved."})
	return nil
}

// ---- DIDs.

func didRowEdit(a store.Account, id int64, f *form, users sipUsers, csrf string) *rowEdit {
	e := &rowEdit{ID: id, RowID: fmt.Sprintf("did-%d", id), Cols: 3, Action: fmt.Sprintf("/accounts/%d/dids/%d", a.ID, id),
		Cancel: fmt.Sprintf("/accounts/%d/dids", a.ID), Label: "DID " + f.Value("number"), Form: f, CSRF: csrf}
	return e.build(f.field("number", "Number (E.164)", "text").req(), userPicker(f, users))
}

// pickerMax is the most SIP users the "Route to SIP user" select lists;
// an account with more gets a text input for the username.
const pickerMax = 200

// sipUsers is what the DID forms offer for "Route to SIP user".
type sipUsers struct {
	Names []string // the account's usernames, when Total <= pickerMax
	Total int
}

// userPicker is "Route to SIP user": a select of the account's SIP users,
// which also offers the value the form holds when it is not among them; a
// text input when the account has more than pickerMax.
func userPicker(f *form, users sipUsers) *field {
	const help = "Calls to the DID ring this SIP user's registered phones; none: they go to the account's receiving IP endpoints."
	if users.Total > pickerMax {
		return f.field("sip_user", "Route to SIP user", "text").auto("off").
			help(fmt.Sprintf("The username of one of this account's %d SIP users; empty: the account's receiving IP endpoints.", users.Total))
	}
	opts := []string{"", "(none: the account's receiving IP endpoints)"}
	have := f.get("sip_user") == ""
	for _, u := range users.Names {
		opts = append(opts, u, u)
		have = have || u == f.get("sip_user")
	}
	if !have {
		opts = append(opts, f.get("sip_user"), f.get("sip_user"))
	}
	return f.field("sip_user", "Route to SIP user", "select").choices(opts...).help(help)
}

// accountUsernames lists the usernames of the account's SIP users for the
// picker: none when there are more than pickerMax.
func (s *Server) accountUsernames(r *http.Request, ss *session, a store.Account) (sipUsers, error) {
	list := func(limit int) ([]store.SIPUser, int, error) {
		return s.svc.ListSIPUsers(r.Context(), ss.Caller, store.SIPUserFilter{AccountID: a.ID, Page: store.Page{Limit: limit}})
	}
	_, total, err := list(1) // the count first: a large account is not read
	if err != nil || total > pickerMax {
		return sipUsers{Total: total}, err
	}
	items, total, err := list(pickerMax)
	out := sipUsers{Total: total}
	for _, u := range items {
		out.Names = append(out.Names, u.Username)
	}
	return out, err
}

func (s *Server) didEdit(r *http.Request, ss *session, a store.Account, rows []didRow, users sipUsers) *rowEdit {
	id := editID(r)
	for _, d := range rows {
		if d.ID == id {
			v := url.Values{"number": {"+" + d.Number}, "sip_user": {d.Username}}
			return didRowEdit(a, id, newForm(v), users, ss.CSRF)
		}
	}
	return nil
}

func (s *Server) didUpdate(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, d, id, err := owned(s, r, ss, s.svc.GetDID, didOwner)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	d.Number = f.get("number")
	if err := s.resolveDIDUser(r, ss, a, f, &d); err != nil {
		return err
	}
	if !f.HasErrors() {
		err := s.svc.UpdateDID(r.Context(), ss.Caller, &d)
		if err == nil {
			s.redirect(w, r, fmt.Sprintf("/accounts/%d/dids#did-%d", a.ID, id), flash{"ok", "DID " + d.Number + " saved."})
			return nil
		}
		if !f.refuse(err) {
			return err
		}
		f.renameErr("sip_user_id", "sip_user")
	}
	users, err := s.accountUsernames(r, ss, a)
	if err != nil {
		return err
	}
	return s.renderDIDPage(w, r, ss, a, newForm(nil), didRowEdit(a, id, f, users, ss.CSRF))
}

// resolveDIDUser sets d's SIP user from the form's username (empty: none);
// an unknown username is an error on the field.
func (s *Server) resolveDIDUser(r *http.Request, ss *session, a store.Account, f *form, d *store.DID) error {
	d.SIPUserID = nil
	name := f.get("sip_user")
	if name == "" {
		return nil
	}
	u, ok, err := s.userByName(r.Context(), ss.Caller, a.ID, name)
	if err != nil {
		return err
	}
	if !ok {
		f.fail("sip_user", name+" is not a SIP user of this account")
		return nil
	}
	d.SIPUserID = &u.ID
	return nil
}

// renameErr moves the error of field from (the API's name) to to (the form's).
func (f *form) renameErr(from, to string) {
	if msg, ok := f.errs[from]; ok {
		f.errs[to] = msg
		delete(f.errs, from)
	}
}
