package web

import (
	"net/http"
	"strconv"

	"github.com/sipward/sipward/internal/store"
)

// accountChoices is the operator's account filter: a select of accounts by
// name (the first 1000 by ID), "" for every account. An ID not among them
// (a deleted account, or beyond the first 1000) stays selectable as #ID, so
// a filter in the address bar is shown as it is. nil for an account login,
// which sees only its own account.
func (s *Server) accountChoices(r *http.Request, ss *session, selected string) []option {
	if !ss.Caller.Operator {
		return nil
	}
	items, _, err := s.svc.ListAccounts(r.Context(), ss.Caller, store.AccountFilter{Page: store.Page{Limit: 1000}})
	if err != nil {
		s.log.Warn("web: accounts for the filter", "err", err)
	}
	out := []option{{Value: "", Label: "All accounts", Selected: selected == "" || selected == "0"}}
	found := selected == "" || selected == "0"
	for _, a := range items {
		id := strconv.FormatInt(a.ID, 10)
		out = append(out, option{Value: id, Label: a.Name, Selected: id == selected})
		found = found || id == selected
	}
	if !found {
		out = append(out, option{Value: selected, Label: "#" + selected, Selected: true})
	}
	return out
}

// accountPicker turns the form's "account" field into the select of
// accountChoices.
func (s *Server) accountPicker(r *http.Request, ss *session, fl *field) *field {
	fl.Type, fl.Inputmode, fl.Pattern, fl.Options = "select", "", "", s.accountChoices(r, ss, fl.Value)
	return fl
}
