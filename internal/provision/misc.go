package provision

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
)

// ---- SIP profiles: everyone reads, the operator writes.

func validateProfile(p *store.Profile) error {
	if err := checkName("name", p.Name, true); err != nil {
		return err
	}
	if err := checkUserChannels("channels", p.Channels); err != nil {
		return err
	}
	if err := checkLimit("cps", p.CPS); err != nil {
		return err
	}
	if err := checkProtocol("protocol", &p.Protocol); err != nil {
		return err
	}
	if err := checkNATPing("nat_ping", &p.NATPing); err != nil {
		return err
	}
	return checkCodecs("restricted_codecs", &p.RestrictedCodecs)
}

func profileErr(id int64, err error) error {
	if errors.Is(err, store.ErrConflict) {
		return conflict("duplicate_profile", "name", "a profile with this name already exists")
	}
	return storeErr("profile", id, err)
}

// ListProfiles lists SIP profiles.
func (s *Service) ListProfiles(ctx context.Context, _ Caller, f store.ProfileFilter) (items []store.Profile, total int, err error) {
	f.Page = page(f.Page)
	err = s.st.View(ctx, func(tx store.Tx) error {
		items, total, err = tx.ListProfiles(ctx, f)
		return err
	})
	return items, total, err
}

// GetProfile returns one SIP profile.
func (s *Service) GetProfile(ctx context.Context, _ Caller, id int64) (p store.Profile, err error) {
	err = s.st.View(ctx, func(tx store.Tx) error {
		p, err = tx.GetProfile(ctx, id)
		return storeErr("profile", id, err)
	})
	return p, err
}

// CreateProfile adds a SIP profile. Operator only.
func (s *Service) CreateProfile(ctx context.Context, c Caller, p *store.Profile) error {
	if !c.Operator {
		return forbidden("only the operator can change SIP profiles")
	}
	p.ID = 0
	if err := validateProfile(p); err != nil {
		return err
	}
	return s.update(ctx, c, func(tx store.Tx) error { return profileErr(0, tx.CreateProfile(ctx, p)) })
}

// UpdateProfile replaces a SIP profile. Operator only.
func (s *Service) UpdateProfile(ctx context.Context, c Caller, p *store.Profile) error {
	if !c.Operator {
		return forbidden("only the operator can change SIP profiles")
	}
	if err := validateProfile(p); err != nil {
		return err
	}
	return s.update(ctx, c, func(tx store.Tx) error {
		old, err := tx.GetProfile(ctx, p.ID)
		if err != nil {
			return storeErr("profile", p.ID, err)
		}
		if err := tx.UpdateProfile(ctx, p); err != nil {
			return profileErr(p.ID, err)
		}
		if p.Channels > old.Channels {
			return profileCapacity(ctx, tx, p)
		}
		return nil
	})
}

// profileCapacity checks, after a profile's change reached its users, that
// every account whose users take their channels from it still holds them
// within its capacity; the change is refused (naming the first account that
// does not) rather than leaving an account over its capacity.
func profileCapacity(ctx context.Context, tx store.Tx, p *store.Profile) error {
	users, _, err := tx.ListSIPUsers(ctx, store.SIPUserFilter{ProfileID: p.ID})
	if err != nil {
		return err
	}
	checked := map[int64]bool{}
	for _, u := range users {
		if u.Effective.Channels.From != store.FromProfile || checked[u.AccountID] {
			continue
		}
		checked[u.AccountID] = true
		a, err := tx.GetAccount(ctx, u.AccountID)
		if err != nil {
			return storeErr("account", u.AccountID, err)
		}
		if a.Channels == 0 {
			continue
		}
		sum, err := tx.SumSIPUserChannels(ctx, a.ID, 0)
		if err != nil {
			return err
		}
		if sum > a.Channels {
			e := conflict("no_capacity", "channels", fmt.Sprintf(
				"%s The SIP users of account %q would hold %d of its %d channels with this profile's %d each.",
				MsgNoCapacity, a.Name, sum, a.Channels, p.Channels))
			e.Err = fmt.Errorf("profile %d: account %d over capacity: %d of %d", p.ID, a.ID, sum, a.Channels)
			return e
		}
	}
	return nil
}

// DeleteProfile removes a SIP profile. Operator only.
func (s *Service) DeleteProfile(ctx context.Context, c Caller, id int64) error {
	if !c.Operator {
		return forbidden("only the operator can change SIP profiles")
	}
	return s.update(ctx, c, func(tx store.Tx) error { return storeErr("profile", id, tx.DeleteProfile(ctx, id)) })
}

// ---- Firewall bans: operator only.

func validateBan(b *store.Ban, now time.Time) error {
	_, canon, err := parsePrefix("address", b.Address)
	if err != nil {
		return err
	}
	b.Address = canon
	if err := checkText("reason", b.Reason, maxText); err != nil {
		return err
	}
	if !b.ExpiresAt.IsZero() && !b.ExpiresAt.After(now) {
		return invalid("expires_at", "%s: must be in the future (or omitted: never expires)", b.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// ListBans lists firewall bans. Operator only.
func (s *Service) ListBans(ctx context.Context, c Caller, f store.BanFilter) (items []store.Ban, total int, err error) {
	if !c.Operator {
		return nil, 0, forbidden("only the operator can see firewall bans")
	}
	f.Page = page(f.Page)
	err = s.st.View(ctx, func(tx store.Tx) error {
		items, total, err = tx.ListBans(ctx, f)
		return err
	})
	return items, total, err
}

// GetBan returns one ban. Operator only.
func (s *Service) GetBan(ctx context.Context, c Caller, id int64) (b store.Ban, err error) {
	if !c.Operator {
		return b, forbidden("only the operator can see firewall bans")
	}
	err = s.st.View(ctx, func(tx store.Tx) error {
		b, err = tx.GetBan(ctx, id)
		return storeErr("ban", id, err)
	})
	return b, err
}

// CreateBan bans an address or CIDR. Operator only; detection uses
// AddDetectedBan. It warns, naming the account, for every IP endpoint whose
// address the ban covers: the ban is made all the same, and the firewall
// drops that endpoint's SIP traffic while it lasts.
func (s *Service) CreateBan(ctx context.Context, c Caller, b *store.Ban) ([]Warning, error) {
	if !c.Operator {
		return nil, forbidden("only the operator can ban addresses")
	}
	b.ID, b.Source, b.CreatedAt = 0, store.BanOperator, s.now().UTC()
	if err := validateBan(b, s.now()); err != nil {
		return nil, err
	}
	var warns []Warning
	err := s.update(ctx, c, func(tx store.Tx) error {
		var err error
		if warns, err = banWarnings(ctx, tx, b); err != nil {
			return err
		}
		return storeErr("ban", 0, tx.CreateBan(ctx, b))
	})
	if err != nil {
		return nil, err
	}
	if s.banned != nil {
		s.banned(b.CreatedAt)
	}
	return warns, nil
}

// banWarnings names the IP endpoints whose addresses ban b covers.
func banWarnings(ctx context.Context, tx store.Tx, b *store.Ban) ([]Warning, error) {
	p, err := ParsePrefix(b.Address)
	if err != nil {
		return nil, nil
	}
	eps, _, err := tx.ListEndpoints(ctx, store.EndpointFilter{})
	if err != nil {
		return nil, err
	}
	var warns []Warning
	for _, e := range eps {
		q, err := ParsePrefix(e.Address)
		if err != nil || !q.Overlaps(p) {
			continue // a host name, or another address
		}
		warns = append(warns, Warning{Code: "ban_covers_endpoint", Field: "address", Message: fmt.Sprintf(
			"%s covers IP endpoint %s (id %d) of account %q (id %d): the firewall drops its SIP traffic until the ban is lifted or expires",
			b.Address, e.Address, e.ID, accountName(ctx, tx, e.AccountID), e.AccountID)})
	}
	return warns, nil
}

// EndpointBans returns, by endpoint ID, the ban active at now that covers
// the address of each of endpoints the caller may see (an account login:
// only its own). Endpoints named by host name are never covered. An account
// login gets the ban without its reason, which is the operator's note.
func (s *Service) EndpointBans(ctx context.Context, c Caller, endpoints []store.IPEndpoint, now time.Time) (map[int64]store.Ban, error) {
	out := map[int64]store.Ban{}
	if len(endpoints) == 0 {
		return out, nil
	}
	var bans []store.Ban
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		bans, _, err = tx.ListBans(ctx, store.BanFilter{ActiveAt: now})
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, e := range endpoints {
		if !c.Operator && e.AccountID != c.AccountID {
			continue
		}
		if b, ok := coveringBan(bans, e.Address); ok {
			if !c.Operator {
				b.Reason = ""
			}
			out[e.ID] = b
		}
	}
	return out, nil
}

// coveringBan is the first of bans whose prefix overlaps address.
func coveringBan(bans []store.Ban, address string) (store.Ban, bool) {
	p, err := ParsePrefix(address)
	if err != nil {
		return store.Ban{}, false
	}
	for _, b := range bans {
		if q, err := ParsePrefix(b.Address); err == nil && q.Overlaps(p) {
			return b, true
		}
	}
	return store.Ban{}, false
}

// UpdateBan changes a ban's reason or expiry. Operator only.
func (s *Service) UpdateBan(ctx context.Context, c Caller, b *store.Ban) error {
	if !c.Operator {
		return forbidden("only the operator can change bans")
	}
	return s.update(ctx, c, func(tx store.Tx) error {
		old, err := tx.GetBan(ctx, b.ID)
		if err != nil {
			return storeErr("ban", b.ID, err)
		}
		b.Source, b.CreatedAt = old.Source, old.CreatedAt
		if err := validateBan(b, s.now()); err != nil {
			return err
		}
		return storeErr("ban", b.ID, tx.UpdateBan(ctx, b))
	})
}

// DeleteBan lifts a ban. Operator only.
func (s *Service) DeleteBan(ctx context.Context, c Caller, id int64) error {
	if !c.Operator {
		return forbidden("only the operator can lift bans")
	}
	return s.update(ctx, c, func(tx store.Tx) error { return storeErr("ban", id, tx.DeleteBan(ctx, id)) })
}

// ---- API tokens.

// ListTokens lists API tokens (never their secrets); an account caller sees its own account's.
func (s *Service) ListTokens(ctx context.Context, c Caller, f store.TokenFilter) (items []store.Token, total int, err error) {
	f.Page = page(f.Page)
	if !c.Operator {
		f.AccountID = c.AccountID
	}
	err = s.st.View(ctx, func(tx store.Tx) error {
		items, total, err = tx.ListTokens(ctx, f)
		return err
	})
	return items, total, err
}

func getToken(ctx context.Context, tx store.Tx, c Caller, id int64) (store.Token, error) {
	t, err := tx.GetToken(ctx, id)
	if err != nil {
		return t, storeErr("token", id, err)
	}
	if !c.Operator && (t.AccountID == nil || *t.AccountID != c.AccountID) {
		return store.Token{}, notFound("token", id)
	}
	return t, nil
}

// GetToken returns one token's metadata.
func (s *Service) GetToken(ctx context.Context, c Caller, id int64) (t store.Token, err error) {
	err = s.st.View(ctx, func(tx store.Tx) error {
		t, err = getToken(ctx, tx, c, id)
		return err
	})
	return t, err
}

// resolveScope settles who a new token or login belongs to: an operator
// one (operator callers only, no account) or one account's (an account
// caller's own, whatever it asked). An empty scope means the operator's when
// the operator names no account, else the account's.
func resolveScope(c Caller, scope *store.TokenScope, account **int64, what string) error {
	if *scope == "" {
		*scope = store.ScopeAccount
		if c.Operator && *account == nil {
			*scope = store.ScopeOperator
		}
	}
	switch *scope {
	case store.ScopeOperator:
		if !c.Operator {
			return forbidden("only the operator can create operator " + what + "s")
		}
		if *account != nil {
			return invalid("account_id", "must be empty for an operator %s", what)
		}
	case store.ScopeAccount:
		if !c.Operator {
			id := c.AccountID
			if *account != nil && **account != id {
				return notFound("account", **account)
			}
			*account = &id
		}
		if *account == nil {
			return invalid("account_id", "is required for an account %s", what)
		}
	default:
		return invalid("scope", "%q: must be operator or account", *scope)
	}
	return nil
}

// CreateToken makes a new API token and leaves its secret in t.Secret, once.
// Account callers can only make tokens of their own account.
func (s *Service) CreateToken(ctx context.Context, c Caller, t *store.Token) error {
	t.ID = 0
	if err := resolveScope(c, &t.Scope, &t.AccountID, "token"); err != nil {
		return err
	}
	if err := checkName("name", t.Name, true); err != nil {
		return err
	}
	secretStr, err := secret.GenerateToken(s.rand)
	if err != nil {
		return err
	}
	t.Hash, t.CreatedAt = secret.HashToken(secretStr), s.now().UTC()
	err = s.update(ctx, c, func(tx store.Tx) error {
		if t.AccountID != nil {
			if _, err := s.account(ctx, tx, c, *t.AccountID); err != nil {
				return err
			}
		}
		return storeErr("token", 0, tx.CreateToken(ctx, t))
	})
	if err == nil {
		t.Secret = secretStr
	}
	return err
}

// UpdateToken renames a token. Its secret, scope and account never change:
// revoke it and create another for that.
func (s *Service) UpdateToken(ctx context.Context, c Caller, t *store.Token) error {
	if err := checkName("name", t.Name, true); err != nil {
		return err
	}
	return s.update(ctx, c, func(tx store.Tx) error {
		old, err := getToken(ctx, tx, c, t.ID)
		if err != nil {
			return err
		}
		if t.Scope != old.Scope || (t.AccountID == nil) != (old.AccountID == nil) || t.AccountID != nil && *t.AccountID != *old.AccountID {
			return invalid("scope", "a token's scope and account cannot change: create a new token and revoke this one")
		}
		name := t.Name
		*t = old
		t.Name = name
		return storeErr("token", t.ID, tx.UpdateToken(ctx, t))
	})
}

// DeleteToken revokes a token.
func (s *Service) DeleteToken(ctx context.Context, c Caller, id int64) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		if _, err := getToken(ctx, tx, c, id); err != nil {
			return err
		}
		return storeErr("token", id, tx.DeleteToken(ctx, id))
	})
}

// ErrBadToken: the bearer token is missing, unknown or revoked.
var ErrBadToken = errors.New("invalid or missing API token")

// Authenticator turns bearer tokens into Callers.
type Authenticator struct {
	svc       *Service
	adminHash string // hex SHA-256 of the operator token from config; "" if none
}

// NewAuthenticator accepts adminToken (from config; may be empty) and any
// token stored in the database.
func (s *Service) NewAuthenticator(adminToken string) *Authenticator {
	a := &Authenticator{svc: s}
	if adminToken != "" {
		a.adminHash = secret.HashToken(adminToken)
	}
	return a
}

// Authenticate returns the Caller a bearer token stands for.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Caller, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return Caller{}, ErrBadToken
	}
	h := secret.HashToken(token)
	if a.adminHash != "" && subtle.ConstantTimeCompare([]byte(h), []byte(a.adminHash)) == 1 {
		return Operator, nil
	}
	var t store.Token
	err := a.svc.st.View(ctx, func(tx store.Tx) error {
		var err error
		t, err = tx.GetTokenByHash(ctx, h)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Caller{}, ErrBadToken
	}
	if err != nil {
		return Caller{}, err
	}
	actor := "token:" + t.Name
	if t.Scope == store.ScopeOperator {
		return Caller{Operator: true, TokenID: t.ID, Actor: actor}, nil
	}
	if t.AccountID == nil {
		return Caller{}, ErrBadToken
	}
	return Caller{AccountID: *t.AccountID, TokenID: t.ID, Actor: actor}, nil
}

// EnsureOperatorToken makes an operator token at first start, when none was
// configured and none is stored, and returns its secret to print once.
// It returns "" when there is nothing to print.
func (s *Service) EnsureOperatorToken(ctx context.Context) (string, error) {
	const key = "operator_token_generated"
	var out string
	err := s.update(ctx, system, func(tx store.Tx) error {
		if _, err := tx.GetSetting(ctx, key); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		tok, err := secret.GenerateToken(s.rand)
		if err != nil {
			return err
		}
		t := store.Token{Name: "operator (generated at first start)", Scope: store.ScopeOperator,
			Hash: secret.HashToken(tok), CreatedAt: s.now().UTC()}
		if err := tx.CreateToken(ctx, &t); err != nil {
			return err
		}
		out = tok
		return tx.PutSetting(ctx, key, s.now().UTC().Format(time.RFC3339))
	})
	return out, err
}

// AddDetectedBan records a ban made by fraud detection (firewall stage).
func (s *Service) AddDetectedBan(ctx context.Context, b store.Ban) error {
	b.ID, b.Source = 0, store.BanDetection
	if b.CreatedAt.IsZero() {
		b.CreatedAt = s.now().UTC()
	}
	_, canon, err := parsePrefix("address", b.Address)
	if err != nil {
		return err
	}
	b.Address = canon
	return s.update(ctx, Firewall, func(tx store.Tx) error { return tx.CreateBan(ctx, &b) })
}

// NonceSecret returns the secret that signs digest nonces, made at first
// start and kept in the store so that every node shares it (a nonce minted by
// one node is valid on all).
func (s *Service) NonceSecret(ctx context.Context) ([]byte, error) {
	const key = "digest_nonce_secret"
	var out []byte
	err := s.update(ctx, system, func(tx store.Tx) error {
		v, err := tx.GetSetting(ctx, key)
		if err == nil {
			out, err = hex.DecodeString(v)
			return err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		out = make([]byte, 32)
		if _, err := io.ReadFull(s.rand, out); err != nil {
			return err
		}
		return tx.PutSetting(ctx, key, hex.EncodeToString(out))
	})
	return out, err
}
