package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
)

// validateSIPUser checks and canonicalises a SIP user's own fields (not the
// password, not the rules that need the store), and reports every field
// that is wrong, not only the first.
func validateSIPUser(u *store.SIPUser) error {
	var l errList
	l.add(checkUsername("username", u.Username))
	// Settings left nil are inherited from the profile (or the defaults).
	if u.Channels != nil {
		l.add(checkUserChannels("channels", *u.Channels))
	}
	if u.CPS != nil {
		l.add(checkLimit("cps", *u.CPS))
	}
	if u.Protocol != nil {
		l.add(checkProtocol("protocol", u.Protocol))
	}
	if u.NATPing != nil {
		l.add(checkNATPing("nat_ping", u.NATPing))
	}
	l.add(checkMediaRelay("media_relay", &u.MediaRelay))
	l.add(checkSessionExpires("session_expires", &u.SessionExpires))
	l.add(checkWhitelist("ip_whitelist", &u.IPWhitelist))
	if u.RestrictedCodecs != nil {
		l.add(checkCodecs("restricted_codecs", &u.RestrictedCodecs))
	}
	l.add(checkEmail("voicemail.email", u.Voicemail.Email))
	if u.Voicemail.PIN != "" {
		l.add(checkPIN("voicemail.pin", u.Voicemail.PIN))
	}
	l.add(checkRingTimeout("voicemail.ring_timeout", &u.Voicemail.RingTimeout))
	return l.err()
}

// checkWhitelist canonicalises a SIP user's allowed source addresses.
func checkWhitelist(field string, list *[]string) error {
	if *list == nil {
		*list = []string{}
	}
	if len(*list) > maxWhitelist {
		return invalid(field, "has more than %d entries", maxWhitelist)
	}
	for i, a := range *list {
		_, canon, err := parsePrefix(fmt.Sprintf("%s[%d]", field, i), a)
		if err != nil {
			return err
		}
		(*list)[i] = canon
	}
	return nil
}

// checkSIPUser runs validateSIPUser and the username and password rules
// together, so one refusal names every wrong field: a duplicate username
// and a too-short password at once. old is nil for a new user.
func checkSIPUser(ctx context.Context, tx store.Tx, a store.Account, u *store.SIPUser, old *store.SIPUser) error {
	var l errList
	l.add(validateSIPUser(u))
	if old == nil || old.Username != u.Username {
		if err := checkNewUsername(ctx, tx, a, u); !l.add(err) {
			return err
		}
	}
	switch {
	case u.Password != "":
		l.add(checkPassword("password", u.Password))
	case old != nil && old.Username != u.Username:
		l.add(invalid("password", "is required when the username changes (the stored digests depend on it)"))
	}
	return l.err()
}

// checkNewUsername checks a new or changed username against the account's
// number block and the realm's other users.
func checkNewUsername(ctx context.Context, tx store.Tx, a store.Account, u *store.SIPUser) error {
	if u.Username == "" {
		return nil // validateSIPUser said it is required
	}
	if !inBlock(a, u.Username) {
		return conflict("outside_block", "username", fmt.Sprintf(
			"%q is outside the account's number block %s", u.Username, blockRange(a)))
	}
	if _, err := tx.GetSIPUserByName(ctx, u.Realm, u.Username); err == nil {
		return conflict("duplicate_user", "username", MsgDuplicateUser)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// saveSIPUser runs the rules that need the store, for a new (old == nil) or
// changed user, and turns the password and PIN into their stored digests.
// It returns the clear password when one was generated, to show once.
func (s *Service) saveSIPUser(ctx context.Context, tx store.Tx, u *store.SIPUser, old *store.SIPUser) (string, error) {
	a, err := tx.GetAccount(ctx, u.AccountID)
	if err != nil {
		return "", storeErr("account", u.AccountID, err)
	}
	if err := checkSIPUser(ctx, tx, a, u, old); err != nil {
		return "", err
	}
	var prof *store.Profile
	if u.ProfileID != nil {
		p, err := tx.GetProfile(ctx, *u.ProfileID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return "", invalid("profile_id", "%d: no such profile", *u.ProfileID)
			}
			return "", err
		}
		prof = &p
	}
	store.Resolve(u, prof)
	if channels := u.Effective.Channels.Value; a.Channels > 0 && (old == nil || channels > old.Effective.Channels.Value) {
		sum, err := tx.SumSIPUserChannels(ctx, a.ID, u.ID)
		if err != nil {
			return "", err
		}
		if sum+channels > a.Channels {
			e := conflict("no_capacity", "channels", MsgNoCapacity)
			e.Err = fmt.Errorf("account %d: users hold %d of %d channels, %d more asked", a.ID, sum, a.Channels, channels)
			return "", e
		}
	}
	generated := ""
	switch {
	case u.Password != "":
	case old == nil:
		p, err := secret.GeneratePassword(s.rand)
		if err != nil {
			return "", err
		}
		u.Password, generated = p, p
	}
	if u.Password != "" {
		u.HA1MD5, u.HA1SHA256 = ha1(u.Username, u.Realm, u.Password)
	} else {
		u.HA1MD5, u.HA1SHA256 = old.HA1MD5, old.HA1SHA256
	}
	switch {
	case u.Voicemail.PIN != "":
		h, err := secret.HashPassword(s.rand, u.Voicemail.PIN)
		if err != nil {
			return "", err
		}
		u.Voicemail.PINHash = h
	case old != nil:
		u.Voicemail.PINHash = old.Voicemail.PINHash
	}
	u.Voicemail.PIN = ""
	u.Voicemail.PINSet = u.Voicemail.PINHash != ""
	return generated, nil
}

func (s *Service) createSIPUser(ctx context.Context, tx store.Tx, u *store.SIPUser) error {
	u.ID = 0
	u.Realm = s.realm
	generated, err := s.saveSIPUser(ctx, tx, u, nil)
	if err != nil {
		return err
	}
	if err := tx.CreateSIPUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return conflict("duplicate_user", "username", MsgDuplicateUser)
		}
		return err
	}
	// The clear password leaves only when generated here, to be shown once.
	u.Password = generated
	return nil
}

// ListSIPUsers lists SIP users; an account caller sees only its own.
func (s *Service) ListSIPUsers(ctx context.Context, c Caller, f store.SIPUserFilter) (items []store.SIPUser, total int, err error) {
	f.Page = page(f.Page)
	if !c.Operator {
		if f.AccountID != 0 && f.AccountID != c.AccountID {
			return []store.SIPUser{}, 0, nil
		}
		f.AccountID = c.AccountID
	}
	err = s.st.View(ctx, func(tx store.Tx) error {
		items, total, err = tx.ListSIPUsers(ctx, f)
		return err
	})
	return items, total, err
}

func getSIPUser(ctx context.Context, tx store.Tx, c Caller, id int64) (store.SIPUser, error) {
	u, err := tx.GetSIPUser(ctx, id)
	if err != nil {
		return u, storeErr("sip user", id, err)
	}
	if !c.sees(u.AccountID) {
		return store.SIPUser{}, notFound("sip user", id)
	}
	return u, nil
}

// GetSIPUser returns one SIP user.
func (s *Service) GetSIPUser(ctx context.Context, c Caller, id int64) (u store.SIPUser, err error) {
	err = s.st.View(ctx, func(tx store.Tx) error {
		u, err = getSIPUser(ctx, tx, c, id)
		return err
	})
	return u, err
}

// CreateSIPUser adds a SIP user to account u.AccountID. With no password
// given, one is generated and left in u.Password to be shown once.
func (s *Service) CreateSIPUser(ctx context.Context, c Caller, u *store.SIPUser) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		if _, err := s.account(ctx, tx, c, u.AccountID); err != nil {
			return err
		}
		return s.createSIPUser(ctx, tx, u)
	})
}

// UpdateSIPUser replaces a SIP user's fields; an empty Password keeps the
// stored digests (a username change needs a new password).
func (s *Service) UpdateSIPUser(ctx context.Context, c Caller, u *store.SIPUser) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		old, err := getSIPUser(ctx, tx, c, u.ID)
		if err != nil {
			return err
		}
		u.AccountID, u.Realm, u.CreatedAt = old.AccountID, old.Realm, old.CreatedAt
		if _, err := s.saveSIPUser(ctx, tx, u, &old); err != nil {
			return err
		}
		u.Password = ""
		err = tx.UpdateSIPUser(ctx, u)
		if errors.Is(err, store.ErrConflict) {
			return conflict("duplicate_user", "username", MsgDuplicateUser)
		}
		return storeErr("sip user", u.ID, err)
	})
}

// ResetSIPUserPassword sets a new generated password and returns it, once.
func (s *Service) ResetSIPUserPassword(ctx context.Context, c Caller, id int64) (string, error) {
	var pw string
	err := s.updateAs(ctx, c, store.AuditResetPassword, func(tx store.Tx) error {
		u, err := getSIPUser(ctx, tx, c, id)
		if err != nil {
			return err
		}
		pw, err = secret.GeneratePassword(s.rand)
		if err != nil {
			return err
		}
		u.HA1MD5, u.HA1SHA256 = ha1(u.Username, u.Realm, pw)
		return storeErr("sip user", id, tx.UpdateSIPUser(ctx, &u))
	})
	return pw, err
}

// DeleteSIPUser removes a SIP user, its rewrite rules, and its DIDs' routing to it.
func (s *Service) DeleteSIPUser(ctx context.Context, c Caller, id int64) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		if _, err := getSIPUser(ctx, tx, c, id); err != nil {
			return err
		}
		return storeErr("sip user", id, tx.DeleteSIPUser(ctx, id))
	})
}
