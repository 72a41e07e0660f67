package provision

import (
	"context"
	"fmt"
	"strconv"

	"github.com/sipward/sipward/internal/store"
)

// NewAccount is an account to create, optionally with its first IP
// endpoints, SIP users, CLI patterns and DIDs, all saved in one transaction
// or none. Errors in them name the item: "ip_endpoints[0].address".
type NewAccount struct {
	store.Account
	IPEndpoints []store.IPEndpoint `json:"ip_endpoints,omitempty"`
	SIPUsers    []store.SIPUser    `json:"sip_users,omitempty"`
	CLIPatterns []store.CLIPattern `json:"cli_patterns,omitempty"`
	DIDs        []store.DID        `json:"dids,omitempty"`
}

// validateAccount checks an account's own fields and reports every wrong one.
func validateAccount(a *store.Account) error {
	var l errList
	l.add(checkName("name", a.Name, true))
	l.add(checkLimit("channels", a.Channels))
	l.add(checkLimit("cps", a.CPS))
	if a.BlockSize < 0 || a.BlockSize > maxBlockSize {
		l.add(invalid("number_block_size", "%d: must be between 0 (no block) and %d", a.BlockSize, maxBlockSize))
	}
	if a.BlockFrom < 0 || a.BlockFrom > maxBlockStart {
		l.add(invalid("number_block_start", "%d: must be between 0 and %d", a.BlockFrom, maxBlockStart))
	}
	if a.BlockSize == 0 && a.BlockFrom != 0 {
		l.add(invalid("number_block_size", "must be set when number_block_start is set"))
	}
	return l.err()
}

// blockRange describes an account's internal number block for messages.
func blockRange(a store.Account) string {
	return fmt.Sprintf("%d-%d", a.BlockFrom, a.BlockFrom+a.BlockSize-1)
}

// inBlock reports whether username is a number inside the account's block
// (always true when the account has no block).
func inBlock(a store.Account, username string) bool {
	if a.BlockSize == 0 {
		return true
	}
	if username == "" || username[0] == '+' || username[0] == '-' {
		return false
	}
	n, err := strconv.ParseInt(username, 10, 64)
	return err == nil && n >= a.BlockFrom && n < a.BlockFrom+a.BlockSize
}

// ListAccounts lists accounts; an account caller sees only its own.
func (s *Service) ListAccounts(ctx context.Context, c Caller, f store.AccountFilter) (items []store.Account, total int, err error) {
	f.Page = page(f.Page)
	err = s.st.View(ctx, func(tx store.Tx) error {
		if !c.Operator {
			a, err := tx.GetAccount(ctx, c.AccountID)
			if err != nil {
				return storeErr("account", c.AccountID, err)
			}
			items, total = []store.Account{}, 0
			if f.Name == "" || containsFold(a.Name, f.Name) {
				total = 1
				if f.Offset == 0 {
					items = append(items, a)
				}
			}
			return nil
		}
		items, total, err = tx.ListAccounts(ctx, f)
		return err
	})
	return items, total, err
}

// GetAccount returns one account.
func (s *Service) GetAccount(ctx context.Context, c Caller, id int64) (a store.Account, err error) {
	err = s.st.View(ctx, func(tx store.Tx) error {
		a, err = s.account(ctx, tx, c, id)
		return err
	})
	return a, err
}

// CreatedAccount is what CreateAccount saved, with generated passwords
// filled in on SIPUsers (shown once).
type CreatedAccount struct {
	store.Account
	IPEndpoints []store.IPEndpoint `json:"ip_endpoints"`
	SIPUsers    []store.SIPUser    `json:"sip_users"`
	CLIPatterns []store.CLIPattern `json:"cli_patterns"`
	DIDs        []store.DID        `json:"dids"`
}

// CreateAccount creates an account and its nested objects. Operator only.
func (s *Service) CreateAccount(ctx context.Context, c Caller, in *NewAccount) (*CreatedAccount, []Warning, error) {
	if !c.Operator {
		return nil, nil, forbidden("only the operator can create accounts")
	}
	a := in.Account
	if err := validateAccount(&a); err != nil {
		return nil, nil, err
	}
	out := &CreatedAccount{}
	var warns []Warning
	err := s.update(ctx, c, func(tx store.Tx) error {
		out.IPEndpoints, out.SIPUsers, out.CLIPatterns, out.DIDs = nil, nil, nil, nil
		warns = nil
		if err := tx.CreateAccount(ctx, &a); err != nil {
			return storeErr("account", 0, err)
		}
		out.Account = a
		for i := range in.IPEndpoints {
			e := in.IPEndpoints[i]
			e.AccountID = a.ID
			w, err := s.createEndpoint(ctx, tx, &e)
			if err != nil {
				return prefixed(fmt.Sprintf("ip_endpoints[%d]", i), err)
			}
			warns = append(warns, prefixWarnings(fmt.Sprintf("ip_endpoints[%d]", i), w)...)
			out.IPEndpoints = append(out.IPEndpoints, e)
		}
		for i := range in.SIPUsers {
			u := in.SIPUsers[i]
			u.AccountID = a.ID
			if err := s.createSIPUser(ctx, tx, &u); err != nil {
				return prefixed(fmt.Sprintf("sip_users[%d]", i), err)
			}
			out.SIPUsers = append(out.SIPUsers, u)
		}
		for i := range in.CLIPatterns {
			p := in.CLIPatterns[i]
			p.AccountID = a.ID
			if err := createCLIPattern(ctx, tx, &p); err != nil {
				return prefixed(fmt.Sprintf("cli_patterns[%d]", i), err)
			}
			out.CLIPatterns = append(out.CLIPatterns, p)
		}
		for i := range in.DIDs {
			d := in.DIDs[i]
			d.AccountID = a.ID
			if err := createDID(ctx, tx, &d); err != nil {
				return prefixed(fmt.Sprintf("dids[%d]", i), err)
			}
			out.DIDs = append(out.DIDs, d)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, l := range []*[]store.IPEndpoint{&out.IPEndpoints} {
		if *l == nil {
			*l = []store.IPEndpoint{}
		}
	}
	if out.SIPUsers == nil {
		out.SIPUsers = []store.SIPUser{}
	}
	if out.CLIPatterns == nil {
		out.CLIPatterns = []store.CLIPattern{}
	}
	if out.DIDs == nil {
		out.DIDs = []store.DID{}
	}
	return out, warns, nil
}

// UpdateAccount replaces an account's fields. Account callers may rename
// their account but not change its capacity, CPS or number block.
func (s *Service) UpdateAccount(ctx context.Context, c Caller, a *store.Account) error {
	if err := validateAccount(a); err != nil {
		return err
	}
	return s.update(ctx, c, func(tx store.Tx) error {
		old, err := s.account(ctx, tx, c, a.ID)
		if err != nil {
			return err
		}
		if !c.Operator && (old.Channels != a.Channels || old.CPS != a.CPS || old.BlockFrom != a.BlockFrom || old.BlockSize != a.BlockSize) {
			return forbidden("only the operator can change an account's channels, cps or number block")
		}
		// Checked when the capacity changes: an account whose users hold more
		// than it (made before every user held a channel, see migration 5)
		// can still be renamed.
		if a.Channels > 0 && a.Channels != old.Channels {
			sum, err := tx.SumSIPUserChannels(ctx, a.ID, 0)
			if err != nil {
				return err
			}
			if sum > a.Channels {
				e := conflict("no_capacity", "channels", MsgNoCapacity)
				e.Err = fmt.Errorf("sip users of account %d hold %d channels, more than %d", a.ID, sum, a.Channels)
				return e
			}
		}
		if a.BlockFrom != old.BlockFrom || a.BlockSize != old.BlockSize {
			users, _, err := tx.ListSIPUsers(ctx, store.SIPUserFilter{AccountID: a.ID})
			if err != nil {
				return err
			}
			for _, u := range users {
				if !inBlock(*a, u.Username) {
					return conflict("outside_block", "number_block_start",
						fmt.Sprintf("SIP user %q is outside the new number block %s", u.Username, blockRange(*a)))
				}
			}
		}
		a.CreatedAt = old.CreatedAt
		return storeErr("account", a.ID, tx.UpdateAccount(ctx, a))
	})
}

// DeleteAccount deletes an account and everything that belongs to it. Operator only.
func (s *Service) DeleteAccount(ctx context.Context, c Caller, id int64) error {
	if !c.Operator {
		return forbidden("only the operator can delete accounts")
	}
	return s.update(ctx, c, func(tx store.Tx) error {
		return storeErr("account", id, tx.DeleteAccount(ctx, id))
	})
}

func prefixWarnings(p string, ws []Warning) []Warning {
	for i := range ws {
		if ws[i].Field == "" {
			ws[i].Field = p
		} else {
			ws[i].Field = p + "." + ws[i].Field
		}
	}
	return ws
}
