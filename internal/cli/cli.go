// Package cli is sipward's admin command line: `sipward account|endpoint|
// user|did|cli|rewrite|profile|ban|token …` subcommands that call the REST
// API of a running node (--server, --token) and print a table, or the JSON
// the API returned with -o json. Fields are given as key=value arguments,
// named as in the API (values that parse as JSON — numbers, true/false,
// arrays — are sent as such).
package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// resource is one kind of object the CLI manages.
type resource struct {
	name     string   // command word
	help     string   // one line
	coll     string   // collection path; %d is the parent ID
	item     string   // item path (global); %d is the ID
	parent   string   // flag naming the parent ("account", "endpoint", "user") or ""
	parentOK bool     // list works without the parent (global list)
	columns  []string // table columns
	verbs    []string
}

var resources = []resource{
	{name: "account", help: "customer accounts", coll: "/accounts", item: "/accounts/%d",
		columns: []string{"id", "name", "channels", "cps", "number_block_start", "number_block_size"},
		verbs:   []string{"list", "get", "create", "update", "delete"}},
	{name: "endpoint", help: "IP endpoints (IP authentication) of an account", coll: "/accounts/%d/ip-endpoints", item: "/ip-endpoints/%d",
		parent: "account", parentOK: true,
		columns: []string{"id", "account_id", "address", "direction", "protocol", "port", "channels", "cps", "tech_prefix", "cli_auth"},
		verbs:   []string{"list", "get", "create", "update", "delete"}},
	{name: "user", help: "SIP users (digest authentication) of an account", coll: "/accounts/%d/sip-users", item: "/sip-users/%d",
		parent: "account", parentOK: true,
		columns: []string{"id", "account_id", "username", "password", "channels", "cps", "protocol", "nat_ping"},
		verbs:   []string{"list", "get", "create", "update", "delete", "reset-password"}},
	{name: "did", help: "DIDs (phone numbers) of an account", coll: "/accounts/%d/dids", item: "/accounts/%d/dids/%d",
		parent: "account", columns: []string{"id", "account_id", "number", "sip_user_id"},
		verbs: []string{"list", "get", "create", "update", "delete"}},
	{name: "cli", help: "CLI patterns of an account", coll: "/accounts/%d/cli-patterns", item: "/accounts/%d/cli-patterns/%d",
		parent: "account", columns: []string{"id", "account_id", "pattern", "regex"},
		verbs: []string{"list", "get", "create", "update", "delete"}},
	{name: "rewrite", help: "parameter-rewrite rules of an endpoint (--endpoint) or SIP user (--user)", coll: "/%s/%d/rewrites", item: "/%s/%d/rewrites/%d",
		parent: "owner", columns: []string{"id", "type", "regex", "match", "replacement", "order"},
		verbs: []string{"list", "get", "create", "update", "delete", "test", "generate"}},
	{name: "profile", help: "SIP profiles (settings their SIP users take unless they set their own)", coll: "/profiles", item: "/profiles/%d",
		columns: []string{"id", "name", "channels", "cps", "protocol", "nat_ping"},
		verbs:   []string{"list", "get", "create", "update", "delete"}},
	{name: "ban", help: "firewall bans", coll: "/firewall/bans", item: "/firewall/bans/%d",
		columns: []string{"id", "address", "source", "reason", "created_at", "expires_at"},
		verbs:   []string{"list", "get", "create", "update", "delete"}},
	{name: "token", help: "API tokens", coll: "/tokens", item: "/tokens/%d",
		columns: []string{"id", "name", "scope", "account_id", "token", "created_at"},
		verbs:   []string{"list", "get", "create", "update", "delete"}},
	{name: "voicemail", help: "voicemail messages of a SIP user (--user): audio ID > file.wav; greeting file.wav; reset-pin", coll: "/sip-users/%d/voicemail/messages", item: "/sip-users/%d/voicemail/messages/%d",
		parent: "user", columns: []string{"id", "caller", "called", "created_at", "duration_ms", "read", "pin"},
		verbs: []string{"list", "get", "update", "delete", "audio", "greeting", "reset-pin"}},
	{name: "audit", help: "the audit trail, newest first; filters as key=value: object=ip_endpoint:12 account=3 actor=alice action=update since=24h until=2026-12-07T00:00:00Z",
		coll: "/audit", columns: []string{"time", "actor", "via", "source", "action", "object", "object_id", "account_id", "changes"},
		verbs: []string{"list"}},
	{name: "login", help: "web UI sign-ins (operator, or one account's portal)", coll: "/logins", item: "/logins/%d",
		columns: []string{"id", "username", "scope", "account_id", "created_at"},
		verbs:   []string{"list", "get", "create", "update", "delete", "reset-password"}},
}

// Commands returns the command words the CLI handles.
func Commands() []string {
	var out []string
	for _, r := range resources {
		out = append(out, r.name)
	}
	return out
}

// Usage writes the CLI's part of the help.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Admin commands (call the REST API of a running sipward):")
	for _, r := range resources {
		fmt.Fprintf(w, "  sipward %-9s %-55s %s\n", r.name, strings.Join(r.verbs, "|"), r.help)
	}
	fmt.Fprintln(w, `
Common flags: --server URL (env SIPWARD_SERVER, default http://127.0.0.1:8080), --token T (env SIPWARD_TOKEN),
-o table|json. Fields are key=value, named as in the API: for example
  sipward account create name=Acme channels=20
  sipward endpoint create --account 1 address=203.0.113.7 channels=10 tech_prefix=123#
  sipward user create --account 1 username=1001 channels=2
  sipward user update 7 restricted_codecs='["G729"]'
  sipward rewrite test --endpoint 3 type=destination input=0044201234567
  sipward rewrite generate type=destination 01782123456=441782123456 07700900123=447700900123 unchanged=00441782123456
  sipward audit list object=ip_endpoint:3 since=24h`)
}

// Run runs the admin command args[0] and returns the process exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	if err := run(args, stdout); err != nil {
		fmt.Fprintln(stderr, "sipward:", err)
		return 1
	}
	return 0
}

func run(args []string, stdout io.Writer) error {
	var res *resource
	for i := range resources {
		if resources[i].name == args[0] {
			res = &resources[i]
		}
	}
	if res == nil {
		return fmt.Errorf("unknown command %q", args[0])
	}
	if len(args) < 2 {
		return fmt.Errorf("%s: want one of %s", res.name, strings.Join(res.verbs, ", "))
	}
	verb := args[1]
	if !contains(res.verbs, verb) {
		return fmt.Errorf("%s: unknown action %q: want one of %s", res.name, verb, strings.Join(res.verbs, ", "))
	}
	fs := flag.NewFlagSet("sipward "+res.name+" "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("server", envOr("SIPWARD_SERVER", "http://127.0.0.1:8080"), "API base URL")
	token := fs.String("token", os.Getenv("SIPWARD_TOKEN"), "API bearer token")
	output := fs.String("o", "table", "output: table or json")
	account := fs.Int64("account", 0, "account ID")
	endpoint := fs.Int64("endpoint", 0, "IP endpoint ID (rewrite rules)")
	user := fs.Int64("user", 0, "SIP user ID (rewrite rules)")
	limit := fs.Int("limit", 100, "list: page size")
	offset := fs.Int("offset", 0, "list: items to skip")
	filters := fs.String("filter", "", "list: filters as key=value,key=value (e.g. name=acme)")
	// Flags may come before or after positional arguments.
	var pos []string
	rest := args[2:]
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return fmt.Errorf("%s %s: %w", res.name, verb, err)
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			rest = rest[1:]
		}
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("-o: %q: want table or json", *output)
	}
	c := &client{base: strings.TrimRight(*server, "/") + "/api/v1", token: *token}

	if verb == "generate" {
		return generate(c, pos, stdout, *output)
	}
	coll, itemFmt := res.coll, res.item
	var parentArgs []any
	nestedItem := strings.Contains(res.item, "/accounts/")
	switch res.parent {
	case "account":
		switch {
		case *account != 0:
			coll = fmt.Sprintf(res.coll, *account)
			if nestedItem {
				parentArgs = []any{*account}
			}
		case verb == "list" && res.parentOK:
			coll = res.coll[strings.LastIndex(res.coll, "/"):] // the global list
		case verb == "list" || verb == "create" || nestedItem:
			return fmt.Errorf("%s %s: --account is required", res.name, verb)
		}
	case "user":
		if *user == 0 {
			return fmt.Errorf("%s %s: --user is required", res.name, verb)
		}
		coll, parentArgs = fmt.Sprintf(res.coll, *user), []any{*user}
	case "owner":
		switch {
		case *endpoint != 0:
			parentArgs = []any{"ip-endpoints", *endpoint}
		case *user != 0:
			parentArgs = []any{"sip-users", *user}
		default:
			return fmt.Errorf("%s %s: give --endpoint ID or --user ID", res.name, verb)
		}
		coll = fmt.Sprintf(res.coll, parentArgs...)
	}
	itemPath := func() (string, error) {
		if len(pos) == 0 {
			return "", fmt.Errorf("%s %s: want the ID", res.name, verb)
		}
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil {
			return "", fmt.Errorf("%s %s: %q is not an ID", res.name, verb, pos[0])
		}
		pos = pos[1:]
		return fmt.Sprintf(itemFmt, append(parentArgs, id)...), nil
	}

	var out []byte
	var err error
	switch verb {
	case "list":
		q := url.Values{"limit": {strconv.Itoa(*limit)}, "offset": {strconv.Itoa(*offset)}}
		for _, kv := range append(strings.Split(*filters, ","), pos...) { // filters by --filter or as arguments
			if k, v, ok := strings.Cut(kv, "="); ok {
				q.Set(k, v)
			}
		}
		out, err = c.do("GET", coll+"?"+q.Encode(), nil)
	case "get":
		var p string
		if p, err = itemPath(); err == nil {
			out, err = c.do("GET", p, nil)
		}
	case "create":
		var body map[string]any
		if body, err = fields(pos); err == nil {
			out, err = c.do("POST", coll, body)
		}
	case "update":
		var p string
		if p, err = itemPath(); err == nil {
			var body map[string]any
			if body, err = fields(pos); err == nil {
				out, err = c.do("PATCH", p, body)
			}
		}
	case "delete":
		var p string
		if p, err = itemPath(); err == nil {
			out, err = c.do("DELETE", p, nil)
			if err == nil {
				fmt.Fprintln(stdout, "deleted")
				return nil
			}
		}
	case "reset-password":
		var p string
		if p, err = itemPath(); err == nil {
			out, err = c.do("POST", p+"/password", nil)
		}
	case "audio", "greeting", "reset-pin":
		return mailbox(c, verb, *user, itemPath, pos, stdout, *output)
	case "test":
		var body map[string]any
		if body, err = fields(pos); err == nil {
			out, err = c.do("POST", coll+"/test", body)
		}
	}
	if err != nil {
		return err
	}
	if *output == "json" {
		_, err := stdout.Write(out)
		return err
	}
	return printTable(stdout, out, res.columns)
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// stringFields are the JSON names of every string field of the API's
// objects: their values are sent as strings even when they look like
// numbers (username=1001, number=442071234567, tech_prefix=123).
var stringFields = func() map[string]bool {
	m := map[string]bool{"input": true, "type": true}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == t.PkgPath():
				walk(f.Type)
			case f.Type.Kind() == reflect.String && name != "" && name != "-":
				m[name] = true
			}
		}
	}
	for _, v := range []any{store.Account{}, store.IPEndpoint{}, store.SIPUser{}, store.CLIPattern{}, store.DID{},
		store.RewriteRule{}, store.Profile{}, store.Ban{}, store.Token{}} {
		walk(reflect.TypeOf(v))
	}
	return m
}()

// fields turns key=value arguments into a JSON object.
func fields(args []string) (map[string]any, error) {
	m := map[string]any{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", a)
		}
		last := k[strings.LastIndex(k, ".")+1:]
		var j any
		if stringFields[last] {
			m[k] = v
		} else if err := json.Unmarshal([]byte(v), &j); err == nil {
			switch j.(type) {
			case string:
				m[k] = v // keep quotes-free strings as typed
				if strings.HasPrefix(v, `"`) {
					m[k] = j
				}
			default:
				m[k] = j
			}
		} else {
			m[k] = v
		}
		setPath(m, k)
	}
	return m, nil
}

// setPath turns "voicemail.email" keys into nested objects.
func setPath(m map[string]any, k string) {
	head, tail, ok := strings.Cut(k, ".")
	if !ok {
		return
	}
	v := m[k]
	delete(m, k)
	sub, _ := m[head].(map[string]any)
	if sub == nil {
		sub = map[string]any{}
		m[head] = sub
	}
	sub[tail] = v
	setPath(sub, tail)
}

// mailbox runs the voicemail verbs that are not plain CRUD: a message's
// audio to stdout, a greeting from a WAV file, a new PIN.
func mailbox(c *client, verb string, user int64, itemPath func() (string, error), pos []string, stdout io.Writer, output string) error {
	base := fmt.Sprintf("/sip-users/%d/voicemail", user)
	switch verb {
	case "audio":
		p, err := itemPath()
		if err != nil {
			return err
		}
		out, err := c.send("GET", p+"/audio", nil, "")
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	case "greeting":
		if len(pos) != 1 {
			return errors.New("voicemail greeting: want the WAV file (8 kHz 16-bit mono, up to 60 s)")
		}
		wav, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		if _, err := c.send("PUT", base+"/greeting", wav, "audio/wav"); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "greeting set")
		return nil
	}
	out, err := c.do("POST", base+"/pin", nil)
	if err != nil || output == "json" {
		if err == nil {
			_, err = stdout.Write(out)
		}
		return err
	}
	return printTable(stdout, out, []string{"id", "username", "pin"})
}

type client struct {
	base, token string
}

func (c *client) do(method, path string, body any) ([]byte, error) {
	if body == nil {
		return c.send(method, path, nil, "")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.send(method, path, b, "application/json")
}

// CLIAgent is the User-Agent of the CLI's API requests.
const CLIAgent = "sipward-cli"

// send sends body (of ctype; none when nil) and returns the answer's body.
func (c *client) send(method, path string, body []byte, ctype string) ([]byte, error) {
	out, _, err := c.sendStatus(method, path, body, ctype, 0)
	return out, err
}

// sendStatus is send that also returns the status, and takes status ok
// (when not 0) as an answer rather than an error.
func (c *client) sendStatus(method, path string, body []byte, ctype string, ok int) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	if c.token == "" {
		return nil, 0, errors.New("no API token: give --token or set SIPWARD_TOKEN (sipward serve prints one at first start)")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", CLIAgent) // the audit trail records changes as made through the CLI
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode != ok {
		var e struct {
			Error struct{ Code, Message, Field string }
		}
		if json.Unmarshal(out, &e) == nil && e.Error.Message != "" {
			if e.Error.Field != "" {
				return nil, 0, fmt.Errorf("%s (%d): %s: %s", resp.Status[4:], resp.StatusCode, e.Error.Field, e.Error.Message)
			}
			return nil, 0, fmt.Errorf("%s (%d): %s", resp.Status[4:], resp.StatusCode, e.Error.Message)
		}
		return nil, 0, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return out, resp.StatusCode, nil
}

// printTable prints a list or one object as a table of the given columns,
// plus any warnings and a generated password or token.
func printTable(w io.Writer, body []byte, cols []string) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("response is not JSON: %w", err)
	}
	obj, _ := v.(map[string]any)
	var rows []map[string]any
	if items, ok := obj["items"].([]any); ok {
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				rows = append(rows, m)
			}
		}
	} else if obj != nil {
		if _, ok := obj["id"]; !ok {
			// Not a resource (a test call, a reset): print its fields.
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\n", k, cell(obj[k]))
			}
			return tw.Flush()
		}
		rows = []map[string]any{obj}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var hdr []string
	for _, c := range cols {
		hdr = append(hdr, strings.ToUpper(c))
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t"))
	for _, r := range rows {
		var cells []string
		for _, c := range cols {
			cells = append(cells, inheritedCell(r, c))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if total, ok := obj["total"].(float64); ok && int(total) > len(rows) {
		fmt.Fprintf(w, "(%d of %d; use --offset and --limit for more)\n", len(rows), int(total))
	}
	for _, sub := range []string{"ip_endpoints", "sip_users"} {
		if l, ok := obj[sub].([]any); ok && len(l) > 0 {
			fmt.Fprintf(w, "%s:\n", sub)
			for _, it := range l {
				b, _ := json.Marshal(it)
				fmt.Fprintf(w, "  %s\n", b)
			}
		}
	}
	if ws, ok := obj["warnings"].([]any); ok {
		for _, x := range ws {
			if m, ok := x.(map[string]any); ok {
				fmt.Fprintf(w, "warning: %v\n", m["message"])
			}
		}
	}
	if p, ok := obj["password"].(string); ok && p != "" {
		fmt.Fprintf(w, "\nGenerated password (shown once): %s\n", p)
	}
	if t, ok := obj["token"].(string); ok && t != "" {
		fmt.Fprintf(w, "\nToken (shown once): %s\n", t)
	}
	return nil
}

// inheritedCell is cell(r[c]), except that a SIP user's setting it takes
// from its profile (or the defaults) shows the value that applies and where
// it comes from: "4 (profile)".
func inheritedCell(r map[string]any, c string) string {
	if ch, ok := r[c].(map[string]any); ok && c == "changes" {
		return changesCell(ch)
	}
	if r[c] == nil {
		if eff, ok := r["effective"].(map[string]any); ok {
			if e, ok := eff[c].(map[string]any); ok {
				return fmt.Sprintf("%s (%v)", cell(e["value"]), e["from"])
			}
		}
	}
	return cell(r[c])
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		if x == "0001-01-01T00:00:00Z" {
			return "never"
		}
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// changesCell shows an audit entry's changes as "field: before → after; …".
func changesCell(ch map[string]any) string {
	keys := make([]string, 0, len(ch))
	for k := range ch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		fc, _ := ch[k].(map[string]any)
		parts = append(parts, fmt.Sprintf("%s: %s → %s", k, cell(fc["before"]), cell(fc["after"])))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}
