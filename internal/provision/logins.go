package provision

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
)

// ---- Web UI sign-ins (logins): the operator manages every login; an
// account caller manages only its own account's. Passwords are stored only
// as argon2id hashes and never returned, except a generated one, once.

// AdminLogin is the username of the operator login made at first start.
const AdminLogin = "admin"

// ErrBadLogin is the one answer to a failed sign-in: an unknown username and
// a wrong password look the same (no user enumeration).
var ErrBadLogin = errors.New("wrong username or password")

var loginChars = regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]*$`)

// normLogin is the stored form of a login username: trimmed, lowercase.
func normLogin(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func checkLoginName(field, s string) error {
	if s == "" {
		return invalid(field, "is required")
	}
	if len(s) > maxUsername {
		return invalid(field, "is longer than %d characters", maxUsername)
	}
	if !loginChars.MatchString(s) {
		return invalid(field, "%q: use letters, digits and . _ @ + - (starting with a letter or digit)", s)
	}
	return nil
}

func loginErr(id int64, err error) error {
	if errors.Is(err, store.ErrConflict) {
		return conflict("duplicate_login", "username", "a login with this username already exists")
	}
	return storeErr("login", id, err)
}

// LoginCaller returns the Caller a signed-in login acts as.
func LoginCaller(l store.Login) Caller {
	actor := "login:" + l.Username
	if l.Scope == store.ScopeOperator {
		return Caller{Operator: true, Actor: actor}
	}
	if l.AccountID == nil {
		return Caller{AccountID: -1, Actor: actor} // sees nothing
	}
	return Caller{AccountID: *l.AccountID, Actor: actor}
}

func getLogin(ctx context.Context, tx store.Tx, c Caller, id int64) (store.Login, error) {
	l, err := tx.GetLogin(ctx, id)
	if err != nil {
		return l, storeErr("login", id, err)
	}
	if !c.Operator && (l.Scope != store.ScopeAccount || l.AccountID == nil || *l.AccountID != c.AccountID) {
		return store.Login{}, notFound("login", id)
	}
	return l, nil
}

// ListLogins lists logins (never their hashes); an account caller sees its own account's.
func (s *Service) ListLogins(ctx context.Context, c Caller, f store.LoginFilter) (items []store.Login, total int, err error) {
	f.Page = page(f.Page)
	if !c.Operator {
		if (f.AccountID != 0 && f.AccountID != c.AccountID) || f.Scope == store.ScopeOperator {
			return []store.Login{}, 0, nil
		}
		f.AccountID, f.Scope = c.AccountID, store.ScopeAccount
	}
	err = s.st.View(ctx, func(tx store.Tx) error {
		items, total, err = tx.ListLogins(ctx, f)
		return err
	})
	return items, total, err
}

// GetLogin returns one login.
func (s *Service) GetLogin(ctx context.Context, c Caller, id int64) (l store.Login, err error) {
	err = s.st.View(ctx, func(tx store.Tx) error {
		l, err = getLogin(ctx, tx, c, id)
		return err
	})
	return l, err
}

// hashLoginPassword checks a given password, or generates one when empty,
// and returns its hash and the generated password ("" when one was given).
func (s *Service) hashLoginPassword(pw string) (hash, generated string, err error) {
	if pw == "" {
		if pw, err = secret.GeneratePassword(s.rand); err != nil {
			return "", "", err
		}
		generated = pw
	} else if err := checkPassword("password", pw); err != nil {
		return "", "", err
	}
	hash, err = secret.HashPassword(s.rand, pw)
	return hash, generated, err
}

// CreateLogin adds a login. The operator may create operator logins and
// logins of any account; an account caller only logins of its own account.
// With no password given one is generated and left in l.Password, once.
func (s *Service) CreateLogin(ctx context.Context, c Caller, l *store.Login) error {
	l.ID = 0
	l.Username = normLogin(l.Username)
	if err := resolveScope(c, &l.Scope, &l.AccountID, "login"); err != nil {
		return err
	}
	if err := checkLoginName("username", l.Username); err != nil {
		return err
	}
	if l.Scope != store.ScopeOperator && l.Username == AdminLogin {
		return invalid("username", "%q is reserved for the operator", AdminLogin)
	}
	hash, generated, err := s.hashLoginPassword(l.Password)
	if err != nil {
		return err
	}
	l.Hash = hash
	err = s.update(ctx, c, func(tx store.Tx) error {
		if l.AccountID != nil {
			if _, err := s.account(ctx, tx, c, *l.AccountID); err != nil {
				return err
			}
		}
		return loginErr(0, tx.CreateLogin(ctx, l))
	})
	if err != nil {
		return err
	}
	l.Password = generated
	return nil
}

// UpdateLogin renames a login and, when l.Password is set, changes its
// password (which ends its sessions). Scope and account cannot change.
func (s *Service) UpdateLogin(ctx context.Context, c Caller, l *store.Login) error {
	l.Username = normLogin(l.Username)
	if err := checkLoginName("username", l.Username); err != nil {
		return err
	}
	var hash string
	if l.Password != "" {
		h, _, err := s.hashLoginPassword(l.Password)
		if err != nil {
			return err
		}
		hash = h
	}
	return s.update(ctx, c, func(tx store.Tx) error {
		old, err := getLogin(ctx, tx, c, l.ID)
		if err != nil {
			return err
		}
		if l.Scope != "" && l.Scope != old.Scope {
			return invalid("scope", "cannot be changed: delete the login and create another")
		}
		if l.AccountID != nil && (old.AccountID == nil || *l.AccountID != *old.AccountID) {
			return invalid("account_id", "cannot be changed: delete the login and create another")
		}
		l.Scope, l.AccountID, l.CreatedAt, l.Hash = old.Scope, old.AccountID, old.CreatedAt, old.Hash
		if l.Scope != store.ScopeOperator && l.Username == AdminLogin {
			return invalid("username", "%q is reserved for the operator", AdminLogin)
		}
		if hash != "" {
			l.Hash = hash
		}
		l.Password = ""
		return loginErr(l.ID, tx.UpdateLogin(ctx, l))
	})
}

// ResetLoginPassword sets a new generated password and returns it, once.
func (s *Service) ResetLoginPassword(ctx context.Context, c Caller, id int64) (string, error) {
	hash, pw, err := s.hashLoginPassword("")
	if err != nil {
		return "", err
	}
	err = s.updateAs(ctx, c, store.AuditResetPassword, func(tx store.Tx) error {
		l, err := getLogin(ctx, tx, c, id)
		if err != nil {
			return err
		}
		l.Hash = hash
		return loginErr(id, tx.UpdateLogin(ctx, &l))
	})
	if err != nil {
		return "", err
	}
	return pw, nil
}

// DeleteLogin removes a login. The last operator login cannot be removed.
func (s *Service) DeleteLogin(ctx context.Context, c Caller, id int64) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		l, err := getLogin(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if l.Scope == store.ScopeOperator {
			_, n, err := tx.ListLogins(ctx, store.LoginFilter{Scope: store.ScopeOperator, Page: store.Page{Limit: 1}})
			if err != nil {
				return err
			}
			if n <= 1 {
				return conflict("last_operator", "", "the last operator login cannot be deleted")
			}
		}
		return storeErr("login", id, tx.DeleteLogin(ctx, id))
	})
}

// dummyHash is verified against when a username is unknown, so that a
// failed sign-in takes as long whether or not the user exists.
var dummyHash = sync.OnceValue(func() string {
	h, err := secret.HashPassword(zeroReader{}, "sipward: no such login")
	if err != nil {
		panic(err) // zeroReader cannot fail
	}
	return h
})

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// AuthenticateLogin checks a username and password and returns the login
// and the Caller it acts as, or ErrBadLogin. It does not rate-limit: the web
// UI does that per username and source address.
func (s *Service) AuthenticateLogin(ctx context.Context, username, password string) (store.Login, Caller, error) {
	username = normLogin(username)
	var l store.Login
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		l, err = tx.GetLoginByUsername(ctx, username)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || username == "" {
		secret.VerifyPassword(dummyHash(), password)
		return store.Login{}, Caller{}, ErrBadLogin
	}
	if err != nil {
		return store.Login{}, Caller{}, err
	}
	if !secret.VerifyPassword(l.Hash, password) {
		return store.Login{}, Caller{}, ErrBadLogin
	}
	return l, LoginCaller(l), nil
}

// EnsureAdminLogin makes sure the operator can sign in to the web UI.
// With password set (from config), the operator login "admin" exists with
// that password (created, or its password replaced when it differs: config
// is how an operator regains access). With password empty and no operator
// login stored, it creates "admin" with a generated password and returns it
// to print once; otherwise it returns "".
func (s *Service) EnsureAdminLogin(ctx context.Context, password string) (string, error) {
	if password != "" {
		if err := checkPassword("admin-password", password); err != nil {
			return "", err
		}
	}
	// Hash before the write transaction (argon2id takes a while), when needed.
	var need bool
	err := s.st.View(ctx, func(tx store.Tx) error {
		if password != "" {
			l, err := tx.GetLoginByUsername(ctx, AdminLogin)
			if errors.Is(err, store.ErrNotFound) {
				need = true
				return nil
			} else if err != nil {
				return err
			}
			need = l.Scope != store.ScopeOperator || !secret.VerifyPassword(l.Hash, password)
			return nil
		}
		_, n, err := tx.ListLogins(ctx, store.LoginFilter{Scope: store.ScopeOperator, Page: store.Page{Limit: 1}})
		need = n == 0
		return err
	})
	if err != nil || !need {
		return "", err
	}
	hash, generated, err := s.hashLoginPassword(password)
	if err != nil {
		return "", err
	}
	out := ""
	err = s.update(ctx, system, func(tx store.Tx) error {
		out = ""
		l, err := tx.GetLoginByUsername(ctx, AdminLogin)
		switch {
		case err == nil && l.Scope != store.ScopeOperator:
			return fmt.Errorf("login %q exists and is not an operator login", AdminLogin)
		case err == nil && password == "":
			return nil // another node made it meanwhile
		case err == nil:
			l.Hash = hash
			return tx.UpdateLogin(ctx, &l)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if password == "" {
			if _, n, err := tx.ListLogins(ctx, store.LoginFilter{Scope: store.ScopeOperator, Page: store.Page{Limit: 1}}); err != nil || n > 0 {
				return err
			}
		}
		l = store.Login{Username: AdminLogin, Scope: store.ScopeOperator, Hash: hash}
		if err := tx.CreateLogin(ctx, &l); err != nil {
			return err
		}
		out = generated
		return nil
	})
	return out, err
}

// SessionKey returns the key that signs web UI sessions, made at first start
// and kept in the store so that sessions survive restarts and are valid on
// every node.
func (s *Service) SessionKey(ctx context.Context) ([]byte, error) {
	const key = "web_session_key"
	var out []byte
	err := s.st.View(ctx, func(tx store.Tx) error {
		v, err := tx.GetSetting(ctx, key)
		if err == nil {
			out, err = hex.DecodeString(v)
		}
		return err
	})
	if err == nil {
		return out, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	err = s.update(ctx, system, func(tx store.Tx) error {
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
