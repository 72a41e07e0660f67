package api

import (
	"context"
	"net/http"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// route is one API operation: it serves requests and documents itself.
type route struct {
	method, path string
	summary, tag string
	in, out      any      // examples of the request and response types
	list         bool     // out is the item type of a List
	query        []string // filter parameters (limit and offset are implied by list)
	status       int      // success status (200 when 0)
	operator     bool     // operator token required
	handle       func(w http.ResponseWriter, r *http.Request, c provision.Caller) error

	// defaults: fields of in whose default is not the zero value, for the
	// document (resource.defaults).
	defaults map[string]any
}

// resource describes one kind of object for the generic CRUD handlers.
// parent is the path parameter naming the owner ("aid") or "".
type resource[T any] struct {
	name    string // singular, for the document: "IP endpoint"
	tag     string
	list    func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]T, int, error)
	get     func(ctx context.Context, c provision.Caller, id int64) (T, error)
	create  func(ctx context.Context, c provision.Caller, r *http.Request, v *T) ([]provision.Warning, error)
	update  func(ctx context.Context, c provision.Caller, v *T) ([]provision.Warning, error)
	del     func(ctx context.Context, c provision.Caller, id int64) error
	setID   func(v *T, id int64)
	owner   func(v T) int64 // account of an object, to check nested item paths; nil when not nested
	prepare func(ctx context.Context, c provision.Caller, body map[string]any) (map[string]any, error)
	query   []string

	// defaults are the values of fields absent from a create or set to
	// null by a PATCH, where that is not the zero value.
	defaults map[string]any
}

func (rs resource[T]) listRoute(path string) *route {
	var zero T
	return &route{method: "GET", path: path, summary: "List " + rs.name + "s", tag: rs.tag, out: zero, list: true, query: rs.query,
		handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
			limit, err := queryInt(r, "limit", 100)
			if err != nil {
				return err
			}
			offset, err := queryInt(r, "offset", 0)
			if err != nil {
				return err
			}
			if limit == 0 || limit > 1000 {
				return badRequest("limit", "%d: must be between 1 and 1000", limit)
			}
			pg := store.Page{Limit: limit, Offset: offset}
			items, total, err := rs.list(r.Context(), c, r, pg)
			if err != nil {
				return err
			}
			if items == nil {
				items = []T{}
			}
			writeJSON(w, http.StatusOK, List[T]{Items: items, Total: total, Limit: limit, Offset: offset})
			return nil
		}}
}

// itemID reads the item ID and, on nested paths, checks the item belongs to the account in the path.
func (rs resource[T]) item(r *http.Request, c provision.Caller) (T, int64, error) {
	var zero T
	id, err := pathID(r, "id")
	if err != nil {
		return zero, 0, err
	}
	v, err := rs.get(r.Context(), c, id)
	if err != nil {
		return zero, 0, err
	}
	if rs.owner != nil && r.PathValue("aid") != "" {
		aid, err := pathID(r, "aid")
		if err != nil {
			return zero, 0, err
		}
		if rs.owner(v) != aid {
			return zero, 0, &apiError{Status: http.StatusNotFound, Code: "not_found", Msg: rs.name + " not found in this account"}
		}
	}
	return v, id, nil
}

func (rs resource[T]) getRoute(path string) *route {
	var zero T
	return &route{method: "GET", path: path, summary: "Get one " + rs.name, tag: rs.tag, out: zero,
		handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
			v, _, err := rs.item(r, c)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, v)
			return nil
		}}
}

func (rs resource[T]) createRoute(path string) *route {
	var zero T
	return &route{method: "POST", path: path, summary: "Create a " + rs.name, tag: rs.tag, in: zero, out: zero, status: http.StatusCreated,
		defaults: rs.defaults,
		handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
			body, err := decodeMap(r)
			if err != nil {
				return err
			}
			fillDefaults(body, rs.defaults)
			if rs.prepare != nil {
				if body, err = rs.prepare(r.Context(), c, body); err != nil {
					return err
				}
			}
			var v T
			if err := decodeInto(body, &v); err != nil {
				return err
			}
			warns, err := rs.create(r.Context(), c, r, &v)
			if err != nil {
				return err
			}
			out, err := withWarnings(v, warns)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusCreated, out)
			return nil
		}}
}

func (rs resource[T]) patchRoute(path string) *route {
	var zero T
	return &route{method: "PATCH", path: path, summary: "Change some fields of a " + rs.name + " (JSON merge patch; the same rules as create)", tag: rs.tag, in: zero, out: zero,
		defaults: rs.defaults,
		handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
			old, id, err := rs.item(r, c)
			if err != nil {
				return err
			}
			patch, err := decodeMap(r)
			if err != nil {
				return err
			}
			cur, err := toMap(old)
			if err != nil {
				return err
			}
			mergePatch(cur, patch)
			fillDefaults(cur, rs.defaults) // a field set to null takes its default
			var v T
			if err := decodeInto(cur, &v); err != nil {
				return err
			}
			rs.setID(&v, id)
			warns, err := rs.update(r.Context(), c, &v)
			if err != nil {
				return err
			}
			out, err := withWarnings(v, warns)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, out)
			return nil
		}}
}

func (rs resource[T]) deleteRoute(path string) *route {
	return &route{method: "DELETE", path: path, summary: "Delete a " + rs.name, tag: rs.tag, status: http.StatusNoContent,
		handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
			_, id, err := rs.item(r, c)
			if err != nil {
				return err
			}
			if err := rs.del(r.Context(), c, id); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}}
}

// routes returns list+create on collection and get+patch+delete on item.
func (rs resource[T]) routes(collection, item string) []*route {
	var out []*route
	if collection != "" {
		out = append(out, rs.listRoute(collection))
		if rs.create != nil {
			out = append(out, rs.createRoute(collection))
		}
	}
	if item != "" {
		out = append(out, rs.getRoute(item))
		if rs.update != nil {
			out = append(out, rs.patchRoute(item))
		}
		out = append(out, rs.deleteRoute(item))
	}
	return out
}

// fillDefaults sets each field of defaults that body lacks.
func fillDefaults(body, defaults map[string]any) {
	for k, v := range defaults {
		if _, ok := body[k]; !ok {
			body[k] = v
		}
	}
}

// noWarn adapts a change that has no warnings.
func noWarn[T any](f func(ctx context.Context, c provision.Caller, v *T) error) func(context.Context, provision.Caller, *T) ([]provision.Warning, error) {
	return func(ctx context.Context, c provision.Caller, v *T) ([]provision.Warning, error) {
		return nil, f(ctx, c, v)
	}
}
