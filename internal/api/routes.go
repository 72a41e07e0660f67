package api

import (
	"context"
	"net/http"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

const v1 = "/api/v1"

// sessionDefaults are the fields of IP endpoints and SIP users that are not
// the zero value when a create leaves them out or a PATCH sets them to null:
// session timers are on unless turned off. (Package provision takes a zero
// session_expires as the default too.)
var sessionDefaults = map[string]any{"session_timers": true, "session_expires": store.DefaultSessionExpires}

// table lists every operation of the API, in the order of the document.
func (s *Server) table() []*route {
	svc := s.svc
	var rt []*route

	// Accounts.
	accounts := resource[store.Account]{name: "account", tag: "accounts", query: []string{"name"},
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.Account, int, error) {
			return svc.ListAccounts(ctx, c, store.AccountFilter{Page: pg, Name: r.URL.Query().Get("name")})
		},
		get:    svc.GetAccount,
		update: noWarn(svc.UpdateAccount),
		del:    svc.DeleteAccount,
		setID:  func(v *store.Account, id int64) { v.ID = id },
	}
	rt = append(rt, accounts.listRoute(v1+"/accounts"))
	rt = append(rt, &route{method: "POST", path: v1 + "/accounts", tag: "accounts", status: http.StatusCreated,
		summary: "Create an account, optionally with its IP endpoints, SIP users, CLI patterns and DIDs in one transaction",
		in:      provision.NewAccount{}, out: provision.CreatedAccount{}, operator: true,
		handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
			body, err := decodeMap(r)
			if err != nil {
				return err
			}
			for _, k := range []string{"ip_endpoints", "sip_users"} {
				items, _ := body[k].([]any)
				for _, it := range items {
					if m, ok := it.(map[string]any); ok {
						fillDefaults(m, sessionDefaults)
					}
				}
			}
			var in provision.NewAccount
			if err := decodeInto(body, &in); err != nil {
				return err
			}
			out, warns, err := svc.CreateAccount(r.Context(), c, &in)
			if err != nil {
				return err
			}
			v, err := withWarnings(out, warns)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusCreated, v)
			return nil
		}})
	rt = append(rt, accounts.routes("", v1+"/accounts/{id}")...)

	// IP endpoints: per account, and the global list.
	endpoints := resource[store.IPEndpoint]{name: "IP endpoint", tag: "ip-endpoints", query: []string{"account_id", "address", "direction"},
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.IPEndpoint, int, error) {
			aid, err := accountScope(ctx, svc, c, r)
			if err != nil {
				return nil, 0, err
			}
			return svc.ListEndpoints(ctx, c, store.EndpointFilter{Page: pg, AccountID: aid,
				Address: r.URL.Query().Get("address"), Direction: store.Direction(r.URL.Query().Get("direction"))})
		},
		get: svc.GetEndpoint,
		create: func(ctx context.Context, c provision.Caller, r *http.Request, v *store.IPEndpoint) ([]provision.Warning, error) {
			aid, err := pathID(r, "aid")
			if err != nil {
				return nil, err
			}
			v.AccountID = aid
			return svc.CreateEndpoint(ctx, c, v)
		},
		update:   svc.UpdateEndpoint,
		del:      svc.DeleteEndpoint,
		setID:    func(v *store.IPEndpoint, id int64) { v.ID = id },
		owner:    func(v store.IPEndpoint) int64 { return v.AccountID },
		defaults: sessionDefaults,
	}
	rt = append(rt, endpoints.routes(v1+"/accounts/{aid}/ip-endpoints", v1+"/accounts/{aid}/ip-endpoints/{id}")...)
	global := endpoints
	global.create = nil
	rt = append(rt, global.routes(v1+"/ip-endpoints", v1+"/ip-endpoints/{id}")...)

	// SIP users: per account, and the global list.
	users := resource[store.SIPUser]{name: "SIP user", tag: "sip-users", query: []string{"account_id", "username"},
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.SIPUser, int, error) {
			aid, err := accountScope(ctx, svc, c, r)
			if err != nil {
				return nil, 0, err
			}
			return svc.ListSIPUsers(ctx, c, store.SIPUserFilter{Page: pg, AccountID: aid, Username: r.URL.Query().Get("username")})
		},
		get: svc.GetSIPUser,
		create: func(ctx context.Context, c provision.Caller, r *http.Request, v *store.SIPUser) ([]provision.Warning, error) {
			aid, err := pathID(r, "aid")
			if err != nil {
				return nil, err
			}
			v.AccountID = aid
			return nil, svc.CreateSIPUser(ctx, c, v)
		},
		update:   noWarn(svc.UpdateSIPUser),
		del:      svc.DeleteSIPUser,
		setID:    func(v *store.SIPUser, id int64) { v.ID = id },
		owner:    func(v store.SIPUser) int64 { return v.AccountID },
		defaults: sessionDefaults,
	}
	rt = append(rt, users.routes(v1+"/accounts/{aid}/sip-users", v1+"/accounts/{aid}/sip-users/{id}")...)
	globalUsers := users
	globalUsers.create = nil
	rt = append(rt, globalUsers.routes(v1+"/sip-users", v1+"/sip-users/{id}")...)
	rt = append(rt, voicemailRoutes(svc)...)
	rt = append(rt, auditRoutes(svc)...)
	for _, p := range []string{v1 + "/sip-users/{id}/password", v1 + "/accounts/{aid}/sip-users/{id}/password"} {
		rt = append(rt, &route{method: "POST", path: p, tag: "sip-users", out: PasswordReset{},
			summary: "Reset a SIP user's password: a new one is generated and returned, once",
			handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				u, id, err := users.item(r, c)
				if err != nil {
					return err
				}
				pw, err := svc.ResetSIPUserPassword(r.Context(), c, id)
				if err != nil {
					return err
				}
				writeJSON(w, http.StatusOK, PasswordReset{ID: id, Username: u.Username, Password: pw})
				return nil
			}})
	}

	// CLI patterns and DIDs of an account.
	patterns := resource[store.CLIPattern]{name: "CLI pattern", tag: "cli-patterns",
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.CLIPattern, int, error) {
			aid, err := pathID(r, "aid")
			if err != nil {
				return nil, 0, err
			}
			return svc.ListCLIPatterns(ctx, c, store.CLIPatternFilter{Page: pg, AccountID: aid})
		},
		get: svc.GetCLIPattern,
		create: func(ctx context.Context, c provision.Caller, r *http.Request, v *store.CLIPattern) ([]provision.Warning, error) {
			aid, err := pathID(r, "aid")
			if err != nil {
				return nil, err
			}
			v.AccountID = aid
			return nil, svc.CreateCLIPattern(ctx, c, v)
		},
		update: noWarn(svc.UpdateCLIPattern),
		del:    svc.DeleteCLIPattern,
		setID:  func(v *store.CLIPattern, id int64) { v.ID = id },
		owner:  func(v store.CLIPattern) int64 { return v.AccountID },
	}
	rt = append(rt, patterns.routes(v1+"/accounts/{aid}/cli-patterns", v1+"/accounts/{aid}/cli-patterns/{id}")...)

	dids := resource[store.DID]{name: "DID", tag: "dids", query: []string{"number", "sip_user_id"},
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.DID, int, error) {
			aid, err := pathID(r, "aid")
			if err != nil {
				return nil, 0, err
			}
			uid, err := queryInt64(r, "sip_user_id")
			if err != nil {
				return nil, 0, err
			}
			return svc.ListDIDs(ctx, c, store.DIDFilter{Page: pg, AccountID: aid, Number: r.URL.Query().Get("number"), SIPUserID: uid})
		},
		get: svc.GetDID,
		create: func(ctx context.Context, c provision.Caller, r *http.Request, v *store.DID) ([]provision.Warning, error) {
			aid, err := pathID(r, "aid")
			if err != nil {
				return nil, err
			}
			v.AccountID = aid
			return nil, svc.CreateDID(ctx, c, v)
		},
		update: noWarn(svc.UpdateDID),
		del:    svc.DeleteDID,
		setID:  func(v *store.DID, id int64) { v.ID = id },
		owner:  func(v store.DID) int64 { return v.AccountID },
	}
	rt = append(rt, dids.routes(v1+"/accounts/{aid}/dids", v1+"/accounts/{aid}/dids/{id}")...)

	// Rewrite rules of an IP endpoint or a SIP user, with a test call.
	for _, o := range []struct {
		kind store.OwnerKind
		base string
	}{{store.OwnerEndpoint, v1 + "/ip-endpoints/{oid}"}, {store.OwnerSIPUser, v1 + "/sip-users/{oid}"}} {
		kind := o.kind
		rules := resource[store.RewriteRule]{name: "rewrite rule", tag: "rewrites",
			list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.RewriteRule, int, error) {
				oid, err := pathID(r, "oid")
				if err != nil {
					return nil, 0, err
				}
				return svc.ListRewriteRules(ctx, c, store.RewriteFilter{Page: pg, OwnerKind: kind, OwnerID: oid})
			},
			get: func(ctx context.Context, c provision.Caller, id int64) (store.RewriteRule, error) {
				return svc.GetRewriteRule(ctx, c, id)
			},
			create: func(ctx context.Context, c provision.Caller, r *http.Request, v *store.RewriteRule) ([]provision.Warning, error) {
				oid, err := pathID(r, "oid")
				if err != nil {
					return nil, err
				}
				v.OwnerKind, v.OwnerID = kind, oid
				return nil, svc.CreateRewriteRule(ctx, c, v)
			},
			update: noWarn(svc.UpdateRewriteRule),
			del:    svc.DeleteRewriteRule,
			setID:  func(v *store.RewriteRule, id int64) { v.ID = id },
		}
		rt = append(rt, rules.routes(o.base+"/rewrites", o.base+"/rewrites/{id}")...)
		rt = append(rt, &route{method: "POST", path: o.base + "/rewrites/test", tag: "rewrites", in: RewriteTestIn{}, out: provision.RewriteTest{},
			summary: "Test call: run an input through the rules as a call would, and say which rule fired",
			handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
				oid, err := pathID(r, "oid")
				if err != nil {
					return err
				}
				body, err := decodeMap(r)
				if err != nil {
					return err
				}
				var in RewriteTestIn
				if err := decodeInto(body, &in); err != nil {
					return err
				}
				if in.Type == "" {
					in.Type = store.RewriteDestination
				}
				res, err := svc.TestRewrite(r.Context(), c, kind, oid, in.Type, in.Input)
				if err != nil {
					return err
				}
				writeJSON(w, http.StatusOK, res)
				return nil
			}})
	}

	// SIP profiles.
	profiles := resource[store.Profile]{name: "SIP profile", tag: "profiles", query: []string{"name"},
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.Profile, int, error) {
			return svc.ListProfiles(ctx, c, store.ProfileFilter{Page: pg, Name: r.URL.Query().Get("name")})
		},
		get: svc.GetProfile,
		create: func(ctx context.Context, c provision.Caller, _ *http.Request, v *store.Profile) ([]provision.Warning, error) {
			return nil, svc.CreateProfile(ctx, c, v)
		},
		update: noWarn(svc.UpdateProfile),
		del:    svc.DeleteProfile,
		setID:  func(v *store.Profile, id int64) { v.ID = id },
		prepare: func(_ context.Context, _ provision.Caller, body map[string]any) (map[string]any, error) {
			defaultChannels(body)
			return body, nil
		},
	}
	rt = append(rt, profiles.routes(v1+"/profiles", v1+"/profiles/{id}")...)

	// Firewall bans (operator only).
	bans := resource[store.Ban]{name: "firewall ban", tag: "firewall", query: []string{"address", "source", "active"},
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.Ban, int, error) {
			f := store.BanFilter{Page: pg, Address: r.URL.Query().Get("address"), Source: store.BanSource(r.URL.Query().Get("source"))}
			if r.URL.Query().Get("active") == "true" {
				f.ActiveAt = time.Now()
			}
			return svc.ListBans(ctx, c, f)
		},
		get: svc.GetBan,
		create: func(ctx context.Context, c provision.Caller, _ *http.Request, v *store.Ban) ([]provision.Warning, error) {
			return svc.CreateBan(ctx, c, v)
		},
		update: noWarn(svc.UpdateBan),
		del:    svc.DeleteBan,
		setID:  func(v *store.Ban, id int64) { v.ID = id },
	}
	for _, r := range bans.routes(v1+"/firewall/bans", v1+"/firewall/bans/{id}") {
		r.operator = true
		rt = append(rt, r)
	}

	// API tokens: created, listed, renamed, revoked (secret and scope never change).
	tokens := resource[store.Token]{name: "API token", tag: "tokens", query: []string{"account_id"},
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.Token, int, error) {
			aid, err := queryInt64(r, "account_id")
			if err != nil {
				return nil, 0, err
			}
			return svc.ListTokens(ctx, c, store.TokenFilter{Page: pg, AccountID: aid})
		},
		get: svc.GetToken,
		create: func(ctx context.Context, c provision.Caller, _ *http.Request, v *store.Token) ([]provision.Warning, error) {
			return nil, svc.CreateToken(ctx, c, v)
		},
		update: noWarn(svc.UpdateToken),
		del:    svc.DeleteToken,
		setID:  func(v *store.Token, id int64) { v.ID = id },
	}
	rt = append(rt, tokens.routes(v1+"/tokens", v1+"/tokens/{id}")...)

	// Web UI sign-ins: the operator manages every login, an account caller
	// its own account's. Hashes are never returned; a generated password
	// once, on create or reset.
	logins := resource[store.Login]{name: "login", tag: "logins", query: []string{"account_id", "scope", "username"},
		list: func(ctx context.Context, c provision.Caller, r *http.Request, pg store.Page) ([]store.Login, int, error) {
			aid, err := queryInt64(r, "account_id")
			if err != nil {
				return nil, 0, err
			}
			q := r.URL.Query()
			return svc.ListLogins(ctx, c, store.LoginFilter{Page: pg, AccountID: aid, Scope: store.TokenScope(q.Get("scope")),
				Username: q.Get("username")})
		},
		get: svc.GetLogin,
		create: func(ctx context.Context, c provision.Caller, _ *http.Request, v *store.Login) ([]provision.Warning, error) {
			return nil, svc.CreateLogin(ctx, c, v)
		},
		update: noWarn(svc.UpdateLogin),
		del:    svc.DeleteLogin,
		setID:  func(v *store.Login, id int64) { v.ID = id },
	}
	rt = append(rt, logins.routes(v1+"/logins", v1+"/logins/{id}")...)
	rt = append(rt, &route{method: "POST", path: v1 + "/logins/{id}/password", tag: "logins", out: PasswordReset{},
		summary: "Reset a login's web UI password: a new one is generated and returned, once",
		handle: func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
			l, id, err := logins.item(r, c)
			if err != nil {
				return err
			}
			pw, err := svc.ResetLoginPassword(r.Context(), c, id)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, PasswordReset{ID: id, Username: l.Username, Password: pw})
			return nil
		}})
	return rt
}

// accountScope returns the account of a nested path ({aid}, which must
// exist and be the caller's) or the account_id query filter of a global list.
func accountScope(ctx context.Context, svc *provision.Service, c provision.Caller, r *http.Request) (int64, error) {
	if r.PathValue("aid") == "" {
		return queryInt64(r, "account_id")
	}
	aid, err := pathID(r, "aid")
	if err != nil {
		return 0, err
	}
	if _, err := svc.GetAccount(ctx, c, aid); err != nil {
		return 0, err
	}
	return aid, nil
}

// defaultChannels gives a new profile that names no channels one: every SIP
// user holds at least one channel of its account's capacity (a SIP user that
// names none inherits its profile's, or one), and an explicit 0 is refused by
// package provision with the field named.
func defaultChannels(body map[string]any) {
	if _, ok := body["channels"]; !ok {
		body["channels"] = 1
	}
}

// PasswordReset is the answer to a password reset: the new password, shown once.
type PasswordReset struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// RewriteTestIn is the body of a rewrite test call.
type RewriteTestIn struct {
	Type  store.RewriteType `json:"type"`
	Input string            `json:"input"`
}
