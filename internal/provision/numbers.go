package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sipward/sipward/internal/store"
)

func validateCLIPattern(p *store.CLIPattern) error {
	p.Pattern = strings.TrimSpace(p.Pattern)
	if p.Regex {
		_, err := checkRegex("pattern", p.Pattern)
		return err
	}
	if p.Pattern == "" {
		return invalid("pattern", "is required")
	}
	return checkDialString("pattern", p.Pattern, 32)
}

func createCLIPattern(ctx context.Context, tx store.Tx, p *store.CLIPattern) error {
	p.ID = 0
	if err := validateCLIPattern(p); err != nil {
		return err
	}
	return storeErr("cli pattern", 0, tx.CreateCLIPattern(ctx, p))
}

func getCLIPattern(ctx context.Context, tx store.Tx, c Caller, id int64) (store.CLIPattern, error) {
	p, err := tx.GetCLIPattern(ctx, id)
	if err != nil {
		return p, storeErr("cli pattern", id, err)
	}
	if !c.sees(p.AccountID) {
		return store.CLIPattern{}, notFound("cli pattern", id)
	}
	return p, nil
}

// ListCLIPatterns lists an account's CLI patterns.
func (s *Service) ListCLIPatterns(ctx context.Context, c Caller, f store.CLIPatternFilter) (items []store.CLIPattern, total int, err error) {
	f.Page = page(f.Page)
	err = s.st.View(ctx, func(tx store.Tx) error {
		if _, err := s.account(ctx, tx, c, f.AccountID); err != nil {
			return err
		}
		items, total, err = tx.ListCLIPatterns(ctx, f)
		return err
	})
	return items, total, err
}

// GetCLIPattern returns one CLI pattern.
func (s *Service) GetCLIPattern(ctx context.Context, c Caller, id int64) (p store.CLIPattern, err error) {
	err = s.st.View(ctx, func(tx store.Tx) error {
		p, err = getCLIPattern(ctx, tx, c, id)
		return err
	})
	return p, err
}

// CreateCLIPattern adds a CLI pattern to account p.AccountID.
func (s *Service) CreateCLIPattern(ctx context.Context, c Caller, p *store.CLIPattern) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		if _, err := s.account(ctx, tx, c, p.AccountID); err != nil {
			return err
		}
		return createCLIPattern(ctx, tx, p)
	})
}

// UpdateCLIPattern replaces a CLI pattern.
func (s *Service) UpdateCLIPattern(ctx context.Context, c Caller, p *store.CLIPattern) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		old, err := getCLIPattern(ctx, tx, c, p.ID)
		if err != nil {
			return err
		}
		p.AccountID = old.AccountID
		if err := validateCLIPattern(p); err != nil {
			return err
		}
		return storeErr("cli pattern", p.ID, tx.UpdateCLIPattern(ctx, p))
	})
}

// DeleteCLIPattern removes a CLI pattern.
func (s *Service) DeleteCLIPattern(ctx context.Context, c Caller, id int64) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		if _, err := getCLIPattern(ctx, tx, c, id); err != nil {
			return err
		}
		return storeErr("cli pattern", id, tx.DeleteCLIPattern(ctx, id))
	})
}

// saveDID validates a DID and its target user (same account).
func saveDID(ctx context.Context, tx store.Tx, d *store.DID) error {
	n, err := checkE164("number", d.Number)
	if err != nil {
		return err
	}
	d.Number = n
	if d.SIPUserID != nil {
		u, err := tx.GetSIPUser(ctx, *d.SIPUserID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.AccountID != d.AccountID) {
			return invalid("sip_user_id", "%d: no such SIP user in this account", *d.SIPUserID)
		}
		if err != nil {
			return err
		}
	}
	others, _, err := tx.ListDIDs(ctx, store.DIDFilter{Number: d.Number})
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.Number == d.Number && o.ID != d.ID {
			return conflict("duplicate_did", "number", fmt.Sprintf("DID %s already belongs to account %q (id %d)",
				d.Number, accountName(ctx, tx, o.AccountID), o.AccountID))
		}
	}
	return nil
}

func createDID(ctx context.Context, tx store.Tx, d *store.DID) error {
	d.ID = 0
	if err := saveDID(ctx, tx, d); err != nil {
		return err
	}
	return storeErr("did", 0, tx.CreateDID(ctx, d))
}

func getDID(ctx context.Context, tx store.Tx, c Caller, id int64) (store.DID, error) {
	d, err := tx.GetDID(ctx, id)
	if err != nil {
		return d, storeErr("did", id, err)
	}
	if !c.sees(d.AccountID) {
		return store.DID{}, notFound("did", id)
	}
	return d, nil
}

// ListDIDs lists an account's DIDs.
func (s *Service) ListDIDs(ctx context.Context, c Caller, f store.DIDFilter) (items []store.DID, total int, err error) {
	f.Page = page(f.Page)
	err = s.st.View(ctx, func(tx store.Tx) error {
		if _, err := s.account(ctx, tx, c, f.AccountID); err != nil {
			return err
		}
		items, total, err = tx.ListDIDs(ctx, f)
		return err
	})
	return items, total, err
}

// GetDID returns one DID.
func (s *Service) GetDID(ctx context.Context, c Caller, id int64) (d store.DID, err error) {
	err = s.st.View(ctx, func(tx store.Tx) error {
		d, err = getDID(ctx, tx, c, id)
		return err
	})
	return d, err
}

// CreateDID adds a DID to account d.AccountID.
func (s *Service) CreateDID(ctx context.Context, c Caller, d *store.DID) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		if _, err := s.account(ctx, tx, c, d.AccountID); err != nil {
			return err
		}
		return createDID(ctx, tx, d)
	})
}

// UpdateDID replaces a DID.
func (s *Service) UpdateDID(ctx context.Context, c Caller, d *store.DID) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		old, err := getDID(ctx, tx, c, d.ID)
		if err != nil {
			return err
		}
		d.AccountID = old.AccountID
		if err := saveDID(ctx, tx, d); err != nil {
			return err
		}
		return storeErr("did", d.ID, tx.UpdateDID(ctx, d))
	})
}

// DeleteDID removes a DID.
func (s *Service) DeleteDID(ctx context.Context, c Caller, id int64) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		if _, err := getDID(ctx, tx, c, id); err != nil {
			return err
		}
		return storeErr("did", id, tx.DeleteDID(ctx, id))
	})
}
