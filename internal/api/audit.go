package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/rewritegen"
	"github.com/sipward/sipward/internal/store"
)

// auditRoutes: the audit trail (read only: nothing edits or deletes it) and
// the rewrite rule generator.
func auditRoutes(svc *provision.Service) []*route {
	trail := resource[store.AuditEntry]{name: "audit entry", tag: "audit",
		query: []string{"object", "account", "actor", "action", "since", "until"},
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.AuditEntry, int, error) {
			f, err := provision.ParseAuditFilter(r.URL.Query().Get, time.Now())
			if err != nil {
				return nil, 0, err
			}
			f.Page = pg
			return svc.ListAudit(ctx, c, f)
		}}
	list := trail.listRoute("/api/v1/audit")
	list.summary = "List the audit trail, newest first: who changed what, when, with a field-level diff (secrets redacted)"
	return []*route{list, {
		method: "POST", path: "/api/v1/rewrites/generate", tag: "rewrites", in: rewritegen.Request{}, out: rewritegen.Result{},
		summary: "Generate a rewrite rule from examples (422 with one rule per group when no single rule fits)",
		handle: func(w http.ResponseWriter, r *http.Request, _ provision.Caller) error {
			body, err := decodeMap(r)
			if err != nil {
				return err
			}
			var in rewritegen.Request
			if err := decodeInto(body, &in); err != nil {
				return err
			}
			res, err := rewritegen.Generate(in)
			var fe *rewritegen.FieldError
			var ce *rewritegen.ConflictError
			switch {
			case errors.As(err, &fe):
				return badRequest(fe.Field, "%s", fe.Msg)
			case errors.As(err, &ce):
				writeJSON(w, http.StatusUnprocessableEntity, generateConflict{
					Error:    ErrorDetail{Code: "no_single_rule", Message: ce.Error(), Field: "examples"},
					Disagree: ce.Disagree, Groups: ce.Groups})
				return nil
			case err != nil:
				return err
			}
			writeJSON(w, http.StatusOK, res)
			return nil
		}}}
}

// generateConflict is the 422 answer of the generator: the examples that
// disagree, and one proposed rule per group of examples.
type generateConflict struct {
	Error    ErrorDetail        `json:"error"`
	Disagree []rewritegen.Pair  `json:"disagree"`
	Groups   []rewritegen.Group `json:"groups"`
}
