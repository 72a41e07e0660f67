package snapshot

import (
	"context"
	"errors"
	"fmt"

	"github.com/sipward/sipward/internal/store"
)

// Dataset is everything Build compiles, as read from the store: one
// consistent read of every list, and the revision it was read at.
type Dataset struct {
	Revision    int64
	Accounts    []store.Account
	Endpoints   []store.IPEndpoint
	Users       []store.SIPUser // Build reads their Effective settings, which the store resolves
	CLIPatterns []store.CLIPattern
	DIDs        []store.DID
	Rewrites    []store.RewriteRule
	Bans        []store.Ban
}

// Load reads a Dataset from st in one read-only transaction. The revision is
// read just before the transaction: the data is at least that new, so a write
// that lands in between shows up as a newer revision at the next poll (and
// costs one extra build) rather than being missed.
func Load(ctx context.Context, st store.Store) (Dataset, error) {
	rev, err := st.Revision(ctx)
	if err != nil {
		return Dataset{}, fmt.Errorf("snapshot: load: %w", err)
	}
	ds := Dataset{Revision: rev}
	err = st.View(ctx, func(tx store.Tx) error {
		var err error
		if ds.Accounts, _, err = tx.ListAccounts(ctx, store.AccountFilter{}); err != nil {
			return fmt.Errorf("list accounts: %w", err)
		}
		if ds.Endpoints, _, err = tx.ListEndpoints(ctx, store.EndpointFilter{}); err != nil {
			return fmt.Errorf("list ip endpoints: %w", err)
		}
		if ds.Users, _, err = tx.ListSIPUsers(ctx, store.SIPUserFilter{}); err != nil {
			return fmt.Errorf("list sip users: %w", err)
		}
		if ds.CLIPatterns, _, err = tx.ListCLIPatterns(ctx, store.CLIPatternFilter{}); err != nil {
			return fmt.Errorf("list cli patterns: %w", err)
		}
		if ds.DIDs, _, err = tx.ListDIDs(ctx, store.DIDFilter{}); err != nil {
			return fmt.Errorf("list dids: %w", err)
		}
		if ds.Rewrites, _, err = tx.ListRewriteRules(ctx, store.RewriteFilter{}); err != nil {
			return fmt.Errorf("list rewrite rules: %w", err)
		}
		if ds.Bans, _, err = tx.ListBans(ctx, store.BanFilter{}); err != nil {
			return fmt.Errorf("list bans: %w", err)
		}
		return nil
	})
	if err != nil {
		return Dataset{}, fmt.Errorf("snapshot: load revision %d: %w", rev, err)
	}
	return ds, nil
}

// LoadDelta reads what changed in st after revision since: the change log
// (store.Tx.ChangesSince) and, in the same read-only transaction, the
// current row of each changed object, all the rewrite rules of each changed
// endpoint and SIP user, and every ban when one changed. As with Load, the
// revision is read just before the transaction, and the delta is labelled
// with it or with the latest change it saw, whichever is later.
//
// It returns an error wrapping store.ErrChangesPruned when the log no longer
// reaches back to since, and ErrRebuild when more objects changed than Apply
// takes (see maxOverlay): either way, Load and Build afresh.
func LoadDelta(ctx context.Context, st store.Store, since int64) (Delta, error) {
	rev, err := st.Revision(ctx)
	if err != nil {
		return Delta{}, fmt.Errorf("snapshot: load delta: %w", err)
	}
	d := Delta{
		Since: since, Revision: rev,
		Accounts: map[int64]*store.Account{}, Endpoints: map[int64]*store.IPEndpoint{}, Users: map[int64]*store.SIPUser{},
		CLIPatterns: map[int64]*store.CLIPattern{}, DIDs: map[int64]*store.DID{}, Rewrites: map[RuleOwner][]store.RewriteRule{},
	}
	err = st.View(ctx, func(tx store.Tx) error {
		changes, err := tx.ChangesSince(ctx, since)
		if err != nil {
			return err
		}
		ids := make(map[store.ChangeKind]map[int64]struct{})
		add := func(kind store.ChangeKind, id int64) {
			if ids[kind] == nil {
				ids[kind] = make(map[int64]struct{})
			}
			ids[kind][id] = struct{}{}
		}
		for _, c := range changes {
			d.Revision = max(d.Revision, c.Revision)
			add(c.Kind, c.ID)
		}
		n := 0
		for _, set := range ids {
			n += len(set)
		}
		if n > maxOverlay {
			return rebuild("%d objects changed: more than %d", n, maxOverlay)
		}
		// A rule's owner (as it is now) changes with it. The store logs the
		// owners too, which also covers a rule that moved or was deleted.
		for id := range ids[store.ChangeRewriteRule] {
			r, err := tx.GetRewriteRule(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			default:
				add(r.OwnerKind.ChangeKind(), r.OwnerID)
			}
		}
		if d.BansChanged = len(ids[store.ChangeBan]) > 0; d.BansChanged {
			if d.Bans, _, err = tx.ListBans(ctx, store.BanFilter{}); err != nil {
				return fmt.Errorf("list bans: %w", err)
			}
		}
		for _, read := range []func() error{
			func() error { return getRows(ctx, ids[store.ChangeAccount], tx.GetAccount, d.Accounts) },
			func() error { return getRows(ctx, ids[store.ChangeEndpoint], tx.GetEndpoint, d.Endpoints) },
			func() error { return getRows(ctx, ids[store.ChangeSIPUser], tx.GetSIPUser, d.Users) },
			func() error { return getRows(ctx, ids[store.ChangeCLIPattern], tx.GetCLIPattern, d.CLIPatterns) },
			func() error { return getRows(ctx, ids[store.ChangeDID], tx.GetDID, d.DIDs) },
			func() error { return getRules(ctx, tx, store.OwnerEndpoint, d.Endpoints, d.Rewrites) },
			func() error { return getRules(ctx, tx, store.OwnerSIPUser, d.Users, d.Rewrites) },
		} {
			if err := read(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Delta{}, fmt.Errorf("snapshot: load delta since revision %d: %w", since, err)
	}
	return d, nil
}

// getRows reads the object with each ID into rows (nil: not found).
func getRows[T any](ctx context.Context, ids map[int64]struct{}, get func(context.Context, int64) (T, error), rows map[int64]*T) error {
	for id := range ids {
		v, err := get(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			rows[id] = nil
		case err != nil:
			return err
		default:
			rows[id] = &v
		}
	}
	return nil
}

// getRules reads all the rewrite rules of each owner of rows that exists.
func getRules[T any](ctx context.Context, tx store.Tx, kind store.OwnerKind, owners map[int64]*T, rules map[RuleOwner][]store.RewriteRule) error {
	for id, row := range owners {
		if row == nil {
			continue
		}
		list, _, err := tx.ListRewriteRules(ctx, store.RewriteFilter{OwnerKind: kind, OwnerID: id})
		if err != nil {
			return fmt.Errorf("list rewrite rules of %s %d: %w", ownerName(kind), id, err)
		}
		rules[RuleOwner{kind, id}] = list
	}
	return nil
}
