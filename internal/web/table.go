package web

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// Sorting and paging of lists. A list's URL says its order and page with
// ?sort=<key>&dir=asc|desc&page=<n>, beside the list's own filters, which
// every header and pager link keeps. Each list names the keys it sorts by
// (a whitelist); any other sort asks for the list's default order.
//
// Lists the store pages (accounts, SIP users, bans, …) sort in the store
// (store.Page.Sort, the store's whitelist). Lists held in memory (calls,
// registrations, decisions, nodes) are sorted and paged here, by sortPage.

const pageSize = 50

// listSpec is how a list may be sorted: the keys it sorts by, and the
// order it has when the URL asks for none (defKey "": the store's own).
type listSpec struct {
	keys    []string
	defKey  string
	defDesc bool
}

// pager is the order and page of a list, for the templates: its column
// headers (Col) and its pager ("Page N of M", Previous, Next).
type pager struct {
	Total, Offset, Limit int
	Sort                 string // the key the list is sorted by ("" the default order)
	Desc                 bool
	Path                 string
	Base                 url.Values // the list's filters: its query without sort, dir, page, offset
	keys                 []string
	explicit             bool // the URL asked for this order (links keep it)
}

// listView reads the order and page r asks of a list of spec; Total is
// set by done once the list's length is known.
func listView(r *http.Request, spec listSpec) pager {
	q := r.URL.Query()
	p := pager{Limit: pageSize, Offset: offsetOf(r), Path: r.URL.Path, Base: url.Values{}, keys: spec.keys,
		Sort: spec.defKey, Desc: spec.defDesc}
	for k, v := range q {
		switch k {
		case "sort", "dir", "page", "offset":
		default:
			p.Base[k] = v
		}
	}
	if key := q.Get("sort"); key != "" && slices.Contains(spec.keys, key) {
		p.Sort, p.Desc, p.explicit = key, q.Get("dir") == "desc", true
	}
	return p
}

// done returns p with the list's total.
func (p pager) done(total int) pager { p.Total = total; return p }

// store is the page to ask the store for.
func (p pager) store() store.Page {
	return store.Page{Limit: p.Limit, Offset: p.Offset, Sort: p.Sort, Desc: p.Desc}
}

// newPager is the pager of a list in its default order.
func newPager(r *http.Request, total, _ int) pager {
	return listView(r, listSpec{}).done(total)
}

// offsetOf is the offset of the page r asks for: ?page=N (from 1), or an
// older link's ?offset=.
func offsetOf(r *http.Request) int {
	q := r.URL.Query()
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		return min(n-1, 1<<20) * pageSize
	}
	n, err := strconv.Atoi(q.Get("offset"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Kept reports whether the URL asked for the list's order: its filter
// form then keeps it (keep_sort).
func (p pager) Kept() bool { return p.explicit }

// Page is the number of the page shown, from 1; Pages how many there are.
func (p pager) Page() int  { return p.Offset/max(p.Limit, 1) + 1 }
func (p pager) Pages() int { return max(1, (p.Total+p.Limit-1)/max(p.Limit, 1)) }
func (p pager) First() int { return min(p.Offset+1, p.Total) }
func (p pager) Last() int  { return min(p.Offset+p.Limit, p.Total) }

// Prev and Next are the links to the neighbouring pages ("" at either end).
func (p pager) Prev() string {
	if p.Offset <= 0 {
		return ""
	}
	return p.url(min(p.Page()-1, p.Pages()), p.Sort, p.Desc, p.explicit)
}

func (p pager) Next() string {
	if p.Offset+p.Limit >= p.Total {
		return ""
	}
	return p.url(p.Page()+1, p.Sort, p.Desc, p.explicit)
}

func (p pager) url(page int, key string, desc, sorted bool) string {
	q := url.Values{}
	for k, v := range p.Base {
		q[k] = v
	}
	if sorted {
		q.Set("sort", key)
		q.Set("dir", map[bool]string{false: "asc", true: "desc"}[desc])
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	if len(q) == 0 {
		return p.Path
	}
	return p.Path + "?" + q.Encode()
}

// header is one column header: a link that sorts by its column when the
// list sorts by it, with aria-sort on the column the list is sorted by.
type header struct {
	Label, Class string
	URL          string // "" : the list does not sort by this column
	Sort         string // ascending | descending | ""
}

// Col is the header of the column key, labelled label (class: its CSS
// class). Its link sorts ascending, or flips the order of the sorted one,
// and goes back to the first page.
func (p pager) Col(key, label string, class ...string) header {
	h := header{Label: label}
	if len(class) > 0 {
		h.Class = class[0]
	}
	if !slices.Contains(p.keys, key) {
		return h
	}
	desc := false
	if key == p.Sort {
		h.Sort = map[bool]string{false: "ascending", true: "descending"}[p.Desc]
		desc = !p.Desc
	}
	h.URL = p.url(1, key, desc, true)
	return h
}

// sorter orders the items of an in-memory list, by key: each compares two
// items ascending.
type sorter[T any] map[string]func(a, b T) int

// spec is the list spec of s with its default order.
func (s sorter[T]) spec(defKey string, defDesc bool) listSpec {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return listSpec{keys: keys, defKey: defKey, defDesc: defDesc}
}

// sortPage sorts items (in place, stably) as r asks, or by defKey, and
// returns the page r asks for with its pager. A page past the end shows
// the last.
func sortPage[T any](r *http.Request, items []T, s sorter[T], defKey string, defDesc bool) ([]T, pager) {
	p := listView(r, s.spec(defKey, defDesc)).done(len(items))
	if by := s[p.Sort]; by != nil {
		slices.SortStableFunc(items, func(a, b T) int {
			if p.Desc {
				return by(b, a)
			}
			return by(a, b)
		})
	}
	if p.Offset >= len(items) && len(items) > 0 {
		p.Offset = (p.Pages() - 1) * p.Limit
	}
	if p.Offset >= len(items) {
		return nil, p
	}
	return items[p.Offset:min(len(items), p.Offset+p.Limit)], p
}

// byText and the like build a sorter's comparisons from one field.
func byText[T any](f func(T) string) func(a, b T) int {
	return func(a, b T) int { return cmp.Compare(lower(f(a)), lower(f(b))) }
}

func byNum[T any, N cmp.Ordered](f func(T) N) func(a, b T) int {
	return func(a, b T) int { return cmp.Compare(f(a), f(b)) }
}

func byTime[T any](f func(T) time.Time) func(a, b T) int {
	return func(a, b T) int { return f(a).Compare(f(b)) }
}

func lower(s string) string { return strings.ToLower(s) }

// pastEnd answers a GET of a page past the end of a non-empty list (a
// stale link: rows deleted since) with a redirect to its last page, rather
// than an empty page that reads "no rows yet"; it reports whether it did.
func (s *Server) pastEnd(w http.ResponseWriter, r *http.Request, p pager, shown int) bool {
	if shown > 0 || p.Total == 0 || p.Offset == 0 || r.Method != http.MethodGet {
		return false
	}
	http.Redirect(w, r, p.url(p.Pages(), p.Sort, p.Desc, p.explicit), http.StatusSeeOther)
	return true
}
