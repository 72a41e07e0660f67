package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// Each entity's table and its store.Tx methods. Write-only fields
// (passwords, PIN, token secret) have no column: only their sealed or hashed
// forms are stored.

var accounts = &table[store.Account]{
	what: "account",
	kind: store.ChangeAccount,
	name: "accounts",
	cols: []string{"name", "channels", "cps", "block_from", "block_size", "created_at", "updated_at"},
	args: func(a *store.Account) []any {
		return []any{a.Name, a.Channels, a.CPS, a.BlockFrom, a.BlockSize, a.CreatedAt, a.UpdatedAt}
	},
	scan: func(sc scanner) (a store.Account, err error) {
		var created, updated dbTime
		err = sc.Scan(&a.ID, &a.Name, &a.Channels, &a.CPS, &a.BlockFrom, &a.BlockSize, &created, &updated)
		a.CreatedAt, a.UpdatedAt = time.Time(created), time.Time(updated)
		return a, err
	},
	id:      func(a *store.Account) *int64 { return &a.ID },
	created: func(a *store.Account) *time.Time { return &a.CreatedAt },
	updated: func(a *store.Account) *time.Time { return &a.UpdatedAt },
	sorts:   map[string][]string{"name": {"LOWER(name)"}, "channels": {"channels"}, "cps": {"cps"}, "block": {"block_from"}, "created": {"created_at"}},
}

func (t *tx) CreateAccount(ctx context.Context, a *store.Account) error {
	return accounts.insert(ctx, t, a)
}

func (t *tx) GetAccount(ctx context.Context, id int64) (store.Account, error) {
	return accounts.get(ctx, t, id)
}

func (t *tx) UpdateAccount(ctx context.Context, a *store.Account) error {
	return accounts.update(ctx, t, a)
}

// accountRows selects, for the change log, the rows that deleting an account
// deletes (ON DELETE CASCADE) or changes (DIDs of other accounts routed to
// its users: ON DELETE SET NULL). Its arguments are the account ID, 7 times.
var accountRows = "SELECT " + kindCol(store.ChangeEndpoint) + ", id FROM ip_endpoints WHERE account_id = ?" +
	" UNION ALL SELECT " + kindCol(store.ChangeSIPUser) + ", id FROM sip_users WHERE account_id = ?" +
	" UNION ALL SELECT " + kindCol(store.ChangeCLIPattern) + ", id FROM cli_patterns WHERE account_id = ?" +
	" UNION ALL SELECT " + kindCol(store.ChangeDID) + ", id FROM dids WHERE account_id = ?" +
	" OR sip_user_id IN (SELECT id FROM sip_users WHERE account_id = ?)" +
	" UNION ALL SELECT " + kindCol(store.ChangeToken) + ", id FROM tokens WHERE account_id = ?" +
	" UNION ALL SELECT " + kindCol(store.ChangeLogin) + ", id FROM logins WHERE account_id = ?"

// DeleteAccount deletes the account and, through ON DELETE CASCADE, its
// endpoints, SIP users, CLI patterns, DIDs, tokens and logins. The rewrite
// rules of its endpoints and SIP users have no foreign key, so it deletes
// them first.
func (t *tx) DeleteAccount(ctx context.Context, id int64) error {
	rows, err := t.selectKeys(ctx, accountRows, id, id, id, id, id, id, id)
	if err != nil {
		return fmt.Errorf("list what account %d holds: %w", id, err)
	}
	rules, err := t.writeIDs(ctx, `DELETE FROM rewrite_rules WHERE
		(owner_kind = ? AND owner_id IN (SELECT id FROM ip_endpoints WHERE account_id = ?)) OR
		(owner_kind = ? AND owner_id IN (SELECT id FROM sip_users WHERE account_id = ?)) RETURNING id`,
		string(store.OwnerEndpoint), id, string(store.OwnerSIPUser), id)
	if err != nil {
		return fmt.Errorf("delete rewrite rules of account %d: %w", id, err)
	}
	for _, r := range rules {
		t.record(store.ChangeRewriteRule, r)
	}
	if err := accounts.delete(ctx, t, id); err != nil {
		return err
	}
	t.recordAll(rows)
	return nil
}

func (t *tx) ListAccounts(ctx context.Context, f store.AccountFilter) ([]store.Account, int, error) {
	var w where
	w.contains("name", f.Name)
	return accounts.list(ctx, t, &w, "id", f.Page)
}

var endpoints = &table[store.IPEndpoint]{
	what: "endpoint",
	kind: store.ChangeEndpoint,
	name: "ip_endpoints",
	cols: []string{"account_id", "address", "direction", "channels", "cps", "protocol", "port",
		"manufacturer", "version", "dial_pattern", "tech_prefix", "cli_prefix", "force_from",
		"username", "password_sealed", "force_nat", "intercept_reinvite", "outbound_proxy",
		"cli_auth", "disable_nat", "restricted_codecs", "media_relay", "smart_extension",
		"session_timers", "session_expires", "created_at", "updated_at"},
	args: func(e *store.IPEndpoint) []any {
		return []any{e.AccountID, e.Address, string(e.Direction), e.Channels, e.CPS, string(e.Protocol), e.Port,
			e.Manufacturer, e.Version, e.DialPattern, e.TechPrefix, e.CLIPrefix, e.ForceFrom,
			e.Username, nullBytes(e.PasswordSealed), e.ForceNAT, e.InterceptReinvite, e.OutboundProxy,
			e.CLIAuth, e.DisableNAT, jsonText(e.RestrictedCodecs), string(e.MediaRelay), e.SmartExtension,
			e.SessionTimers, e.SessionExpires, e.CreatedAt, e.UpdatedAt}
	},
	scan: func(sc scanner) (e store.IPEndpoint, err error) {
		var codecs jsonStrings
		var created, updated dbTime
		err = sc.Scan(&e.ID, &e.AccountID, &e.Address, &e.Direction, &e.Channels, &e.CPS, &e.Protocol, &e.Port,
			&e.Manufacturer, &e.Version, &e.DialPattern, &e.TechPrefix, &e.CLIPrefix, &e.ForceFrom,
			&e.Username, &e.PasswordSealed, &e.ForceNAT, &e.InterceptReinvite, &e.OutboundProxy,
			&e.CLIAuth, &e.DisableNAT, &codecs, &e.MediaRelay, &e.SmartExtension,
			&e.SessionTimers, &e.SessionExpires, &created, &updated)
		e.RestrictedCodecs = codecs
		e.CreatedAt, e.UpdatedAt = time.Time(created), time.Time(updated)
		endpointNorm(&e)
		return e, err
	},
	id:      func(e *store.IPEndpoint) *int64 { return &e.ID },
	created: func(e *store.IPEndpoint) *time.Time { return &e.CreatedAt },
	updated: func(e *store.IPEndpoint) *time.Time { return &e.UpdatedAt },
	norm:    endpointNorm,
	sorts:   map[string][]string{"address": {"LOWER(address)"}, "direction": {"direction"}, "protocol": {"protocol"}, "port": {"port"}, "channels": {"channels"}, "cps": {"cps"}, "tech_prefix": {"tech_prefix"}, "cli_auth": {"cli_auth"}},
}

func endpointNorm(e *store.IPEndpoint) {
	e.PasswordSet = len(e.PasswordSealed) > 0
	e.RestrictedCodecs = strs(e.RestrictedCodecs)
}

func (t *tx) CreateEndpoint(ctx context.Context, e *store.IPEndpoint) error {
	return endpoints.insert(ctx, t, e)
}

func (t *tx) GetEndpoint(ctx context.Context, id int64) (store.IPEndpoint, error) {
	return endpoints.get(ctx, t, id)
}

func (t *tx) UpdateEndpoint(ctx context.Context, e *store.IPEndpoint) error {
	return endpoints.update(ctx, t, e)
}

// DeleteEndpoint deletes the endpoint and its rewrite rules.
func (t *tx) DeleteEndpoint(ctx context.Context, id int64) error {
	if err := t.deleteRules(ctx, store.OwnerEndpoint, id); err != nil {
		return err
	}
	return endpoints.delete(ctx, t, id)
}

func (t *tx) ListEndpoints(ctx context.Context, f store.EndpointFilter) ([]store.IPEndpoint, int, error) {
	var w where
	w.add(f.AccountID != 0, "account_id = ?", f.AccountID)
	w.contains("address", f.Address)
	w.add(f.Direction != "", "direction = ?", string(f.Direction))
	return endpoints.list(ctx, t, &w, "id", f.Page)
}

var sipUsers = &table[store.SIPUser]{
	what: "sip user",
	kind: store.ChangeSIPUser,
	name: "sip_users",
	cols: []string{"account_id", "username", "realm", "ha1_md5", "ha1_sha256", "profile_id",
		"channels", "cps", "protocol", "ip_whitelist", "nat_ping", "retain_did", "smart_extension",
		"restricted_codecs", "inherits", "media_relay", "session_timers", "session_expires",
		"vm_enabled", "vm_email", "vm_pin_hash", "voicemail_ring_timeout", "created_at", "updated_at"},
	// The settings columns hold the effective values (Resolve ran before
	// every write); inherits names those that are not the user's own.
	args: func(u *store.SIPUser) []any {
		e := &u.Effective
		return []any{u.AccountID, u.Username, u.Realm, u.HA1MD5, u.HA1SHA256, u.ProfileID,
			e.Channels.Value, e.CPS.Value, string(e.Protocol.Value), jsonText(u.IPWhitelist), string(e.NATPing.Value),
			u.RetainDID, u.SmartExtension, jsonText(e.RestrictedCodecs.Value), strings.Join(e.Inherited(), " "), string(u.MediaRelay),
			u.SessionTimers, u.SessionExpires, u.Voicemail.Enabled, u.Voicemail.Email, u.Voicemail.PINHash, u.Voicemail.RingTimeout,
			u.CreatedAt, u.UpdatedAt}
	},
	scan: func(sc scanner) (u store.SIPUser, err error) {
		var profile sql.NullInt64
		var whitelist, codecs jsonStrings
		var inherits string
		var created, updated dbTime
		e := &u.Effective
		err = sc.Scan(&u.ID, &u.AccountID, &u.Username, &u.Realm, &u.HA1MD5, &u.HA1SHA256, &profile,
			&e.Channels.Value, &e.CPS.Value, &e.Protocol.Value, &whitelist, &e.NATPing.Value, &u.RetainDID, &u.SmartExtension,
			&codecs, &inherits, &u.MediaRelay, &u.SessionTimers, &u.SessionExpires,
			&u.Voicemail.Enabled, &u.Voicemail.Email, &u.Voicemail.PINHash, &u.Voicemail.RingTimeout, &created, &updated)
		u.ProfileID = ptrOf(profile)
		u.IPWhitelist, e.RestrictedCodecs.Value = whitelist, strs(codecs)
		u.CreatedAt, u.UpdatedAt = time.Time(created), time.Time(updated)
		ownSettings(&u, strings.Fields(inherits))
		sipUserNorm(&u)
		return u, err
	},
	id:      func(u *store.SIPUser) *int64 { return &u.ID },
	created: func(u *store.SIPUser) *time.Time { return &u.CreatedAt },
	updated: func(u *store.SIPUser) *time.Time { return &u.UpdatedAt },
	key:     func(u *store.SIPUser) string { return sipUserKey(u.Realm, u.Username) },
	norm:    sipUserNorm,
	sorts:   map[string][]string{"username": {"LOWER(username)"}, "channels": {"channels"}, "cps": {"cps"}, "protocol": {"protocol"}, "nat_ping": {"nat_ping"}, "voicemail": {"vm_enabled"}},
}

// ownSettings sets the sources of u.Effective, whose values are read, and
// u's own settings: a copy of each value not inherited.
func ownSettings(u *store.SIPUser, inherited []string) {
	inherit := store.FromDefault
	if u.ProfileID != nil {
		inherit = store.FromProfile
	}
	e := &u.Effective
	from := func(name string) store.SettingSource {
		if slices.Contains(inherited, name) {
			return inherit
		}
		return store.FromUser
	}
	e.Channels.From, e.CPS.From, e.Protocol.From = from("channels"), from("cps"), from("protocol")
	e.NATPing.From, e.RestrictedCodecs.From = from("nat_ping"), from("restricted_codecs")
	u.Channels, u.CPS, u.Protocol, u.NATPing, u.RestrictedCodecs = nil, nil, nil, nil, nil
	if e.Channels.From == store.FromUser {
		u.Channels = new(e.Channels.Value)
	}
	if e.CPS.From == store.FromUser {
		u.CPS = new(e.CPS.Value)
	}
	if e.Protocol.From == store.FromUser {
		u.Protocol = new(e.Protocol.Value)
	}
	if e.NATPing.From == store.FromUser {
		u.NATPing = new(e.NATPing.Value)
	}
	if e.RestrictedCodecs.From == store.FromUser {
		u.RestrictedCodecs = slices.Clone(e.RestrictedCodecs.Value)
	}
}

func sipUserKey(realm, username string) string {
	return fmt.Sprintf("sip user %q@%q", username, realm)
}

func sipUserNorm(u *store.SIPUser) {
	u.IPWhitelist = strs(u.IPWhitelist)
	u.Effective.RestrictedCodecs.Value = strs(u.Effective.RestrictedCodecs.Value)
	u.Voicemail.PINSet = u.Voicemail.PINHash != ""
}

// resolveUser resolves u's effective settings from its profile, read in
// this transaction (a missing profile is ErrNotFound, a missing parent).
func (t *tx) resolveUser(ctx context.Context, u *store.SIPUser) error {
	if u.ProfileID == nil {
		store.Resolve(u, nil)
		return nil
	}
	p, err := profiles.get(ctx, t, *u.ProfileID)
	if err != nil {
		return err
	}
	store.Resolve(u, &p)
	return nil
}

func (t *tx) CreateSIPUser(ctx context.Context, u *store.SIPUser) error {
	if err := t.resolveUser(ctx, u); err != nil {
		return err
	}
	return sipUsers.insert(ctx, t, u)
}

func (t *tx) GetSIPUser(ctx context.Context, id int64) (store.SIPUser, error) {
	return sipUsers.get(ctx, t, id)
}

func (t *tx) GetSIPUserByName(ctx context.Context, realm, username string) (store.SIPUser, error) {
	return sipUsers.getWhere(ctx, t, sipUserKey(realm, username), "realm = ? AND username = ?", realm, username)
}

func (t *tx) UpdateSIPUser(ctx context.Context, u *store.SIPUser) error {
	if err := t.resolveUser(ctx, u); err != nil {
		return err
	}
	return sipUsers.update(ctx, t, u)
}

// DeleteSIPUser deletes the user and its rewrite rules; its DIDs stay with
// the account (ON DELETE SET NULL clears their SIPUserID).
func (t *tx) DeleteSIPUser(ctx context.Context, id int64) error {
	dids, err := t.selectKeys(ctx, "SELECT "+kindCol(store.ChangeDID)+", id FROM dids WHERE sip_user_id = ?", id)
	if err != nil {
		return fmt.Errorf("list dids of sip user %d: %w", id, err)
	}
	if err := t.deleteRules(ctx, store.OwnerSIPUser, id); err != nil {
		return err
	}
	if err := sipUsers.delete(ctx, t, id); err != nil {
		return err
	}
	t.recordAll(dids)
	return nil
}

func (t *tx) ListSIPUsers(ctx context.Context, f store.SIPUserFilter) ([]store.SIPUser, int, error) {
	var w where
	w.add(f.AccountID != 0, "account_id = ?", f.AccountID)
	w.contains("username", f.Username)
	w.add(f.ProfileID != 0, "profile_id = ?", f.ProfileID)
	return sipUsers.list(ctx, t, &w, "id", f.Page)
}

func (t *tx) SumSIPUserChannels(ctx context.Context, accountID, exclude int64) (int, error) {
	var sum int64
	err := t.queryRow(ctx, "SELECT COALESCE(SUM(channels), 0) FROM sip_users WHERE account_id = ? AND id <> ?",
		accountID, exclude).Scan(&sum)
	if err != nil {
		return 0, fmt.Errorf("sum sip user channels of account %d: %w", accountID, err)
	}
	return int(sum), nil
}

var cliPatterns = &table[store.CLIPattern]{
	what: "cli pattern",
	kind: store.ChangeCLIPattern,
	name: "cli_patterns",
	cols: []string{"account_id", "pattern", "regex"},
	args: func(p *store.CLIPattern) []any { return []any{p.AccountID, p.Pattern, p.Regex} },
	scan: func(sc scanner) (p store.CLIPattern, err error) {
		err = sc.Scan(&p.ID, &p.AccountID, &p.Pattern, &p.Regex)
		return p, err
	},
	id:    func(p *store.CLIPattern) *int64 { return &p.ID },
	sorts: map[string][]string{"pattern": {"pattern"}, "kind": {"regex"}},
}

func (t *tx) CreateCLIPattern(ctx context.Context, p *store.CLIPattern) error {
	return cliPatterns.insert(ctx, t, p)
}

func (t *tx) GetCLIPattern(ctx context.Context, id int64) (store.CLIPattern, error) {
	return cliPatterns.get(ctx, t, id)
}

func (t *tx) UpdateCLIPattern(ctx context.Context, p *store.CLIPattern) error {
	return cliPatterns.update(ctx, t, p)
}

func (t *tx) DeleteCLIPattern(ctx context.Context, id int64) error {
	return cliPatterns.delete(ctx, t, id)
}

func (t *tx) ListCLIPatterns(ctx context.Context, f store.CLIPatternFilter) ([]store.CLIPattern, int, error) {
	var w where
	w.add(f.AccountID != 0, "account_id = ?", f.AccountID)
	return cliPatterns.list(ctx, t, &w, "id", f.Page)
}

var dids = &table[store.DID]{
	what: "did",
	kind: store.ChangeDID,
	name: "dids",
	cols: []string{"account_id", "number", "sip_user_id"},
	args: func(d *store.DID) []any { return []any{d.AccountID, d.Number, d.SIPUserID} },
	scan: func(sc scanner) (d store.DID, err error) {
		var user sql.NullInt64
		err = sc.Scan(&d.ID, &d.AccountID, &d.Number, &user)
		d.SIPUserID = ptrOf(user)
		return d, err
	},
	id:    func(d *store.DID) *int64 { return &d.ID },
	key:   func(d *store.DID) string { return fmt.Sprintf("did %q", d.Number) },
	sorts: map[string][]string{"number": {"number"}},
}

func (t *tx) CreateDID(ctx context.Context, d *store.DID) error {
	return dids.insert(ctx, t, d)
}

func (t *tx) GetDID(ctx context.Context, id int64) (store.DID, error) {
	return dids.get(ctx, t, id)
}

func (t *tx) UpdateDID(ctx context.Context, d *store.DID) error {
	return dids.update(ctx, t, d)
}

func (t *tx) DeleteDID(ctx context.Context, id int64) error {
	return dids.delete(ctx, t, id)
}

func (t *tx) ListDIDs(ctx context.Context, f store.DIDFilter) ([]store.DID, int, error) {
	var w where
	w.add(f.AccountID != 0, "account_id = ?", f.AccountID)
	w.contains("number", f.Number)
	w.add(f.SIPUserID != 0, "sip_user_id = ?", f.SIPUserID)
	return dids.list(ctx, t, &w, "id", f.Page)
}

var rewriteRules = &table[store.RewriteRule]{
	what: "rewrite rule",
	kind: store.ChangeRewriteRule,
	name: "rewrite_rules",
	cols: []string{"owner_kind", "owner_id", "type", "regex", "match_value", "replacement", "sort_order"},
	args: func(r *store.RewriteRule) []any {
		return []any{string(r.OwnerKind), r.OwnerID, string(r.Type), r.Regex, r.Match, r.Replacement, r.Order}
	},
	scan: func(sc scanner) (r store.RewriteRule, err error) {
		err = sc.Scan(&r.ID, &r.OwnerKind, &r.OwnerID, &r.Type, &r.Regex, &r.Match, &r.Replacement, &r.Order)
		return r, err
	},
	id: func(r *store.RewriteRule) *int64 { return &r.ID },
}

// checkOwner returns ErrNotFound unless the owner of a rewrite rule exists:
// no foreign key can check a polymorphic reference.
func (t *tx) checkOwner(ctx context.Context, kind store.OwnerKind, id int64) error {
	var what, tbl string
	switch kind {
	case store.OwnerEndpoint:
		what, tbl = endpoints.what, endpoints.name
	case store.OwnerSIPUser:
		what, tbl = sipUsers.what, sipUsers.name
	default:
		return fmt.Errorf("rewrite rule: unknown owner kind %q", kind)
	}
	var one int
	err := t.queryRow(ctx, "SELECT 1 FROM "+tbl+" WHERE id = ?", id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("rewrite rule: owner %s %d: %w", what, id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("rewrite rule: check owner %s %d: %w", what, id, err)
	}
	return nil
}

// deleteRules deletes the rewrite rules of one owner.
func (t *tx) deleteRules(ctx context.Context, kind store.OwnerKind, id int64) error {
	ids, err := t.writeIDs(ctx, "DELETE FROM rewrite_rules WHERE owner_kind = ? AND owner_id = ? RETURNING id", string(kind), id)
	if err != nil {
		return fmt.Errorf("delete rewrite rules of %s %d: %w", kind, id, err)
	}
	for _, r := range ids {
		t.record(store.ChangeRewriteRule, r)
	}
	return nil
}

// logOwner runs write, a write of the rewrite rule with that ID, and logs
// the rule's owner as it was stored before.
func (t *tx) logOwner(ctx context.Context, id int64, write func() error) error {
	var kind store.OwnerKind
	var owner int64
	err := t.queryRow(ctx, "SELECT owner_kind, owner_id FROM rewrite_rules WHERE id = ?", id).Scan(&kind, &owner)
	if err != nil && !errors.Is(err, sql.ErrNoRows) { // no rule: write says so
		return fmt.Errorf("read owner of rewrite rule %d: %w", id, err)
	}
	if err := write(); err != nil {
		return err
	}
	t.record(kind.ChangeKind(), owner)
	return nil
}

// CreateRewriteRule creates the rule; the change log also names its owner.
func (t *tx) CreateRewriteRule(ctx context.Context, r *store.RewriteRule) error {
	if err := t.checkOwner(ctx, r.OwnerKind, r.OwnerID); err != nil {
		return err
	}
	if err := rewriteRules.insert(ctx, t, r); err != nil {
		return err
	}
	t.record(r.OwnerKind.ChangeKind(), r.OwnerID)
	return nil
}

func (t *tx) GetRewriteRule(ctx context.Context, id int64) (store.RewriteRule, error) {
	return rewriteRules.get(ctx, t, id)
}

// UpdateRewriteRule updates the rule; the change log also names its owner
// before and after.
func (t *tx) UpdateRewriteRule(ctx context.Context, r *store.RewriteRule) error {
	if err := t.checkOwner(ctx, r.OwnerKind, r.OwnerID); err != nil {
		return err
	}
	if err := t.logOwner(ctx, r.ID, func() error { return rewriteRules.update(ctx, t, r) }); err != nil {
		return err
	}
	t.record(r.OwnerKind.ChangeKind(), r.OwnerID)
	return nil
}

// DeleteRewriteRule deletes the rule; the change log also names its owner.
func (t *tx) DeleteRewriteRule(ctx context.Context, id int64) error {
	return t.logOwner(ctx, id, func() error { return rewriteRules.delete(ctx, t, id) })
}

func (t *tx) ListRewriteRules(ctx context.Context, f store.RewriteFilter) ([]store.RewriteRule, int, error) {
	var w where
	w.add(f.OwnerKind != "", "owner_kind = ?", string(f.OwnerKind))
	w.add(f.OwnerID != 0, "owner_id = ?", f.OwnerID)
	return rewriteRules.list(ctx, t, &w, "sort_order, id", f.Page)
}

var profiles = &table[store.Profile]{
	what: "profile",
	kind: store.ChangeProfile,
	name: "profiles",
	cols: []string{"name", "channels", "cps", "protocol", "nat_ping", "restricted_codecs"},
	args: func(p *store.Profile) []any {
		return []any{p.Name, p.Channels, p.CPS, string(p.Protocol), string(p.NATPing), jsonText(p.RestrictedCodecs)}
	},
	scan: func(sc scanner) (p store.Profile, err error) {
		var codecs jsonStrings
		err = sc.Scan(&p.ID, &p.Name, &p.Channels, &p.CPS, &p.Protocol, &p.NATPing, &codecs)
		p.RestrictedCodecs = strs(codecs)
		return p, err
	},
	id:    func(p *store.Profile) *int64 { return &p.ID },
	key:   func(p *store.Profile) string { return fmt.Sprintf("profile %q", p.Name) },
	norm:  func(p *store.Profile) { p.RestrictedCodecs = strs(p.RestrictedCodecs) },
	sorts: map[string][]string{"name": {"LOWER(name)"}, "channels": {"channels"}, "cps": {"cps"}, "protocol": {"protocol"}, "nat_ping": {"nat_ping"}},
}

func (t *tx) CreateProfile(ctx context.Context, p *store.Profile) error {
	return profiles.insert(ctx, t, p)
}

func (t *tx) GetProfile(ctx context.Context, id int64) (store.Profile, error) {
	return profiles.get(ctx, t, id)
}

// UpdateProfile changes the profile and writes its values through to the
// users that inherit them (each logged as a change of that user).
func (t *tx) UpdateProfile(ctx context.Context, p *store.Profile) error {
	if err := profiles.update(ctx, t, p); err != nil {
		return err
	}
	var w where
	w.add(true, "profile_id = ? AND inherits <> ''", p.ID)
	users, _, err := sipUsers.list(ctx, t, &w, "id", store.Page{})
	if err != nil {
		return fmt.Errorf("list sip users of profile %d: %w", p.ID, err)
	}
	for i := range users {
		u := &users[i]
		before := u.Effective
		store.Resolve(u, p)
		if reflect.DeepEqual(before, u.Effective) {
			continue
		}
		if err := sipUsers.update(ctx, t, u); err != nil {
			return err
		}
	}
	return nil
}

// DeleteProfile deletes the profile; its SIP users keep the settings that
// apply, as their own, and lose the reference (ON DELETE SET NULL).
func (t *tx) DeleteProfile(ctx context.Context, id int64) error {
	users, err := t.selectKeys(ctx, "SELECT "+kindCol(store.ChangeSIPUser)+", id FROM sip_users WHERE profile_id = ?", id)
	if err != nil {
		return fmt.Errorf("list sip users of profile %d: %w", id, err)
	}
	if _, err := t.exec(ctx, "UPDATE sip_users SET inherits = '' WHERE profile_id = ?", id); err != nil {
		return writeErr(fmt.Sprintf("sip users of profile %d", id), "update", err)
	}
	if err := profiles.delete(ctx, t, id); err != nil {
		return err
	}
	t.recordAll(users)
	return nil
}

func (t *tx) ListProfiles(ctx context.Context, f store.ProfileFilter) ([]store.Profile, int, error) {
	var w where
	w.contains("name", f.Name)
	return profiles.list(ctx, t, &w, "id", f.Page)
}

var bans = &table[store.Ban]{
	what: "ban",
	kind: store.ChangeBan,
	name: "bans",
	cols: []string{"address", "reason", "source", "created_at", "expires_at"},
	args: func(b *store.Ban) []any {
		return []any{b.Address, b.Reason, string(b.Source), b.CreatedAt, nullTime(b.ExpiresAt)}
	},
	scan: func(sc scanner) (b store.Ban, err error) {
		var created, expires dbTime
		err = sc.Scan(&b.ID, &b.Address, &b.Reason, &b.Source, &created, &expires)
		b.CreatedAt, b.ExpiresAt = time.Time(created), time.Time(expires)
		return b, err
	},
	id:      func(b *store.Ban) *int64 { return &b.ID },
	created: func(b *store.Ban) *time.Time { return &b.CreatedAt },
	norm:    func(b *store.Ban) { b.ExpiresAt = normTime(b.ExpiresAt) },
	// NULL (never expires) sorts first in SQLite and last in PostgreSQL:
	// "expires_at IS NULL" puts it last ascending in both.
	sorts: map[string][]string{"address": {"LOWER(address)"}, "source": {"source"}, "reason": {"LOWER(reason)"}, "since": {"created_at"}, "expires": {"expires_at IS NULL", "expires_at"}},
}

func (t *tx) CreateBan(ctx context.Context, b *store.Ban) error {
	return bans.insert(ctx, t, b)
}

func (t *tx) GetBan(ctx context.Context, id int64) (store.Ban, error) {
	return bans.get(ctx, t, id)
}

func (t *tx) UpdateBan(ctx context.Context, b *store.Ban) error {
	return bans.update(ctx, t, b)
}

func (t *tx) DeleteBan(ctx context.Context, id int64) error {
	return bans.delete(ctx, t, id)
}

func (t *tx) ListBans(ctx context.Context, f store.BanFilter) ([]store.Ban, int, error) {
	var w where
	w.contains("address", f.Address)
	w.add(f.Source != "", "source = ?", string(f.Source))
	w.add(!f.ActiveAt.IsZero(), "(expires_at IS NULL OR expires_at > ?)", normTime(f.ActiveAt))
	return bans.list(ctx, t, &w, "id", f.Page)
}

var tokens = &table[store.Token]{
	what: "token",
	kind: store.ChangeToken,
	name: "tokens",
	cols: []string{"name", "scope", "account_id", "hash", "created_at"},
	args: func(k *store.Token) []any {
		return []any{k.Name, string(k.Scope), k.AccountID, k.Hash, k.CreatedAt}
	},
	scan: func(sc scanner) (k store.Token, err error) {
		var account sql.NullInt64
		var created dbTime
		err = sc.Scan(&k.ID, &k.Name, &k.Scope, &account, &k.Hash, &created)
		k.AccountID = ptrOf(account)
		k.CreatedAt = time.Time(created)
		return k, err
	},
	id:      func(k *store.Token) *int64 { return &k.ID },
	created: func(k *store.Token) *time.Time { return &k.CreatedAt },
	key:     func(k *store.Token) string { return fmt.Sprintf("token %q", k.Name) },
}

func (t *tx) CreateToken(ctx context.Context, k *store.Token) error {
	return tokens.insert(ctx, t, k)
}

func (t *tx) GetToken(ctx context.Context, id int64) (store.Token, error) {
	return tokens.get(ctx, t, id)
}

func (t *tx) GetTokenByHash(ctx context.Context, hash string) (store.Token, error) {
	return tokens.getWhere(ctx, t, "token with that hash", "hash = ?", hash)
}

func (t *tx) UpdateToken(ctx context.Context, k *store.Token) error {
	return tokens.update(ctx, t, k)
}

func (t *tx) DeleteToken(ctx context.Context, id int64) error {
	return tokens.delete(ctx, t, id)
}

func (t *tx) ListTokens(ctx context.Context, f store.TokenFilter) ([]store.Token, int, error) {
	var w where
	w.add(f.AccountID != 0, "account_id = ?", f.AccountID)
	return tokens.list(ctx, t, &w, "id", f.Page)
}

func (t *tx) GetSetting(ctx context.Context, key string) (string, error) {
	var value string
	err := t.queryRow(ctx, "SELECT value FROM settings WHERE name = ?", key).Scan(&value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", notFound(fmt.Sprintf("setting %q", key))
	case err != nil:
		return "", fmt.Errorf("get setting %q: %w", key, err)
	}
	return value, nil
}

func (t *tx) PutSetting(ctx context.Context, key, value string) error {
	_, err := t.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("put setting %q: %w", key, err)
	}
	return nil
}
